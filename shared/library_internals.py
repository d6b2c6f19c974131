"""Every use of a library's private API or undocumented behaviour in chatstream, in one place.

Each section says what it relies on and why it is worth it; tests/unit/test_library_internals.py
fails loudly when an upgrade changes any of it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Connection
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT

# ---------------------------------------------------------------------------------------------
# redis-py: commands packed by hiredis on the asyncio connection.
#
# Relies on: redis-py's asyncio ``Connection`` packing every command it sends, alone or in a
# pipeline, through its ``pack_command`` method (overridden here); and on
# ``redis.connection.HiredisRespSerializer``, the undocumented class with which redis-py's sync
# connection has hiredis pack commands, producing the bytes of redis-py's Python packer for a
# client with the default encoding (UTF-8, strict), which is chatstream's.
#
# Why: the asyncio connection packs every command in Python, argument by argument; hiredis does
# it in C. Packing was about a third of the CPU of publishing an event.
# ---------------------------------------------------------------------------------------------


class HiredisPackingConnection(Connection):
    """A TCP connection whose commands hiredis packs, into the same bytes on the wire."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hiredis_packer = HiredisRespSerializer()

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        # redis-py annotates each of pack's arguments as a list; they are a command's arguments.
        packed: list[bytes] = self._hiredis_packer.pack(*args)  # type: ignore[arg-type]
        return packed
