"""Every use of a library's private API or undocumented behaviour in chatstream, in one place.

Each section says what it relies on and why it is worth it; tests/unit/test_library_internals.py
fails loudly when an upgrade changes any of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aio_pika import RobustConnection
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from redis.asyncio import Connection
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT
from yarl import URL

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


# ---------------------------------------------------------------------------------------------
# redis-py: a cluster node's own connection, and the cluster client's slot map read again.
#
# The sharded pub/sub listener (shared/shard_listener.py) keeps one connection per node of its
# own, outside the node's pool (a pooled connection may be handed to any command), made with the
# settings the cluster client gives its connections to that node. When one of its channels loses
# its home (a slot moved, a failover), it has the client read the slot map again rather than
# wait for one of the client's own commands to meet MOVED. It relies on (redis-py 8.1):
#
# - ``ClusterNode.connection_class`` and ``ClusterNode.connection_kwargs``: the class and the
#   arguments (host, port, password, timeouts, protocol, TLS) of the node's connections;
# - ``RedisCluster.nodes_manager.initialize()``: asks a node that answers for ``CLUSTER SLOTS``
#   and replaces the map that ``get_node_from_key`` reads. ``RedisCluster.initialize()``, the
#   public one, does that once in the client's life.
#
# The alternative, redis-py's ``ClusterPubSub``, says why it is not used in shard_listener.py.
# ---------------------------------------------------------------------------------------------


def cluster_node_connection(node: ClusterNode) -> AbstractConnection:
    """A new connection to ``node``, with its cluster client's settings for it."""
    return node.connection_class(**node.connection_kwargs)


async def refresh_slot_map(cluster: RedisCluster) -> None:
    """Read the cluster's slot map again, from whichever node answers first."""
    await cluster.nodes_manager.initialize()


# ---------------------------------------------------------------------------------------------
# redis-py: a connection closed under a command that is being written.
#
# While a cluster node fails, a command can be written on a connection that is already closed,
# and the error is not the ConnectionError it amounts to:
#
# - the cluster client disconnects the failing node's connections, one that another task is
#   writing a command on included, and redis-py 8.1's asyncio ``Connection`` then writes to the
#   writer it has just dropped (``None``): an AttributeError (``'NoneType' object has no
#   attribute 'writelines'``);
# - the node's socket is closed under redis-py's writer (the node died) before redis-py reads
#   the end of it, and uvloop (0.23), on which the services run, refuses the write with a
#   RuntimeError (``unable to perform operation on <TCPTransport closed=True ...>; the handler
#   is closed``), which redis-py passes on as it is. asyncio's own loop raises a
#   ConnectionResetError there, which redis-py turns into its ConnectionError.
#
# A caller that retries a lost connection retries these too.
# ---------------------------------------------------------------------------------------------


_DROPPED_WRITER_ERRORS = frozenset(
    f"'NoneType' object has no attribute '{method}'" for method in ("write", "writelines", "drain")
)


def is_dropped_connection(error: BaseException) -> bool:
    """Whether ``error`` is a command written on a connection that was closed meanwhile."""
    if isinstance(error, AttributeError):
        # The writer's methods redis-py calls to send; not any attribute of None (a bug).
        return str(error) in _DROPPED_WRITER_ERRORS
    return isinstance(error, RuntimeError) and "the handler is closed" in str(error)


# ---------------------------------------------------------------------------------------------
# aiohttp: a request run through the application in process (the batch route).
#
# aiohttp (3.14) has no public way to run a request through an application's router and
# middlewares other than off a socket. The batch route (gateway/routes/batch.py) needs exactly
# that for each of its items, so that an item is authenticated, rate limited, validated and
# answered as it would be on its own. It relies on:
#
# - ``Application._handle(request)``: resolves the route and runs the middlewares and the
#   handler, returning the response unprepared, as the server's request handler calls it;
# - ``BaseRequest._read_bytes``: the body ``read()`` (and ``json()``, ``text()``) returns once
#   read; set on a clone, the item's body is read from it and the batch's own payload stream,
#   already consumed, is never touched;
# - ``BaseRequest._payload_writer``: the writer a response's ``prepare()`` takes (the public
#   ``request.writer`` reads it); the item's own keeps it off the socket the batch answers on.
#
# A loopback HTTP call would need none of it, at the cost of a connection and a second trip
# through the parser per item.
# ---------------------------------------------------------------------------------------------


def sub_request(
    template: web.Request,
    *,
    method: str,
    rel_url: str,
    headers: Mapping[str, str],
    body: bytes,
    writer: AbstractStreamWriter,
) -> web.Request:
    """A clone of ``template`` (a request whose body is unread: ``clone`` refuses another)
    for ``method`` and ``rel_url``, whose body is ``body``, already read, and whose response
    can only go to ``writer``."""
    sub = template.clone(method=method, rel_url=rel_url, headers=headers)
    sub._read_bytes = body
    sub._payload_writer = writer
    return sub


async def handle_in_app(app: web.Application, request: web.Request) -> web.StreamResponse:
    """``request``'s response from ``app``'s router, middlewares and handler, not prepared."""
    return await app._handle(request)


# ---------------------------------------------------------------------------------------------
# aiohttp: a stream's response headers, let go of once sent.
#
# aiohttp (3.14) serializes a response's headers when ``prepare()`` runs, and reads the header
# mapping no more afterwards (nothing documents that it never will). An open SSE stream keeps
# its response for its whole life, and with it that mapping: about 2 KiB of a stream's 16, the
# largest part of what an idle stream holds beyond a bare aiohttp handler's. Emptied once sent,
# the mapping holds next to nothing. An access log format that prints a response header
# (``%{NAME}o``) would print it empty; chatstream logs its own summary line instead.
# ---------------------------------------------------------------------------------------------


def forget_sent_headers(response: web.StreamResponse) -> None:
    """Let go of a prepared response's header mapping: its headers are on the wire already."""
    assert response.prepared, "a response's headers are sent by prepare()"
    response.headers.clear()


# ---------------------------------------------------------------------------------------------
# aiohttp: a chunk of a streamed body written straight to the socket.
#
# An open stream's events are written by its relay task through ``StreamResponse.write``. Waking
# that task for each event (a future, a task step, the write coroutine) costs the gateway more
# CPU than the write itself: with the chunk written from the fanout's callback instead, while the
# relay waits with nothing pending, the gateway's CPU per relayed event was about a third lower.
# It relies on aiohttp's payload writer (3.14) putting each ``write()`` on the transport at once
# and keeping nothing back for a body that is chunked and not compressed, so that a chunk
# written to the transport between two of its writes reaches the client in order, framed as its
# own chunks are (HTTP/1.1 chunked transfer coding).
# ---------------------------------------------------------------------------------------------


def writes_straight_through(response: web.StreamResponse) -> bool:
    """Whether :func:`write_chunk_now` may write past ``response``'s payload writer: a
    prepared body that is chunked and not compressed."""
    return response.prepared and response.chunked and not response.compression


def write_chunk_now(transport: asyncio.Transport, data: bytes) -> None:
    """Write ``data`` as the next chunk of a body that :func:`writes_straight_through`."""
    transport.write(b"%x\r\n%s\r\n" % (len(data), data))


# ---------------------------------------------------------------------------------------------
# aio-pika: a robust connection that moves to the next node of a cluster.
#
# aio-pika's ``RobustConnection`` reconnects by itself and then reopens its channels and
# restores what they declared, their QoS and their consumers; chatstream wants all of that, but
# to another node when its own is gone, and aio-pika (10.2) reconnects only to the one URL it
# was given. It relies on:
#
# - ``Connection._on_connection_close(closing)``: called once each time a connection ends
#   (lost, or closed by either side) and once for each connection attempt that fails (aio-pika's
#   ``UnderlayConnection.connect`` calls it with the attempt's error before raising);
# - ``Connection.url``: the URL every connection attempt, the first and each reconnection,
#   connects to, read anew by each (aio-pika itself reassigns it in ``update_secret``).
#
# Moving ``url`` to the next node there sends the next attempt, whether it follows a lost
# connection or a failed attempt, to the next node, round the list. The alternative, a reconnect
# loop of chatstream's own, would have to rebuild the channel, topology and consumer restoring
# that aio-pika already does.
# ---------------------------------------------------------------------------------------------


class NodeRotatingConnection(RobustConnection):
    """A robust connection to the first of ``nodes`` that answers; each connection that ends
    and each attempt that fails moves the next attempt on to the next node."""

    def __init__(self, nodes: Sequence[str], **kwargs: Any) -> None:
        if not nodes:
            raise ValueError("a connection needs at least one node")
        self._nodes = tuple(URL(node) for node in nodes)
        self._node = 0
        super().__init__(self._nodes[0], **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Before the base class runs: it is what sets the next attempt going.
        self._node = (self._node + 1) % len(self._nodes)
        self.url = self._nodes[self._node]
        await super()._on_connection_close(closing)
