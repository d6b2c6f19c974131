"""HTTP/1.1 chunked transfer coding, read by tests that take responses off a bare socket."""

from __future__ import annotations


def dechunk(body: bytes) -> bytes:
    """The data of a chunked body; one cut off ends where it was cut."""
    data = b""
    while body:
        size_line, sep, body = body.partition(b"\r\n")
        if not sep or not size_line:
            break
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        data += body[:size]
        body = body[size + 2 :]
    return data
