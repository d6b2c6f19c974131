"""A free local port, for the processes the launcher, the tests and the benchmark start."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on now. Another process may take it before it is used: fine for
    one machine's tests and tools, where nothing else picks ports at random."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port
