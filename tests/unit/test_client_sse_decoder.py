"""The client library's SSE decoder, on the wire shapes a proxy may deliver."""

from __future__ import annotations

from chatstream_client.sse import SseDecoder, SseMessage

WIRE = (
    b'retry: 2000\n\nid: 1\ndata: {"type":"start"}\n\n'
    b': keep-alive\n\ndata: {"type":"heartbeat"}\n\n'
)


def decode(*chunks: bytes) -> tuple[list[SseMessage], SseDecoder]:
    decoder = SseDecoder()
    messages = [m for chunk in chunks for m in decoder.feed(chunk)]
    return messages, decoder


def test_whole_and_byte_by_byte_give_the_same_messages() -> None:
    whole, decoder = decode(WIRE)
    assert whole == [
        SseMessage('{"type":"start"}', id="1"),
        SseMessage('{"type":"heartbeat"}', id=None),
    ]
    assert decoder.retry_ms == 2000
    assert decode(*(WIRE[i : i + 1] for i in range(len(WIRE))))[0] == whole


def test_crlf_split_between_chunks_and_a_multibyte_character_split_too() -> None:
    wire = "id: 5\r\ndata: café\r\n\r\n".encode()
    cut = wire.index("é".encode()) + 1
    messages, _ = decode(wire[:6], wire[6:cut], wire[cut:])
    assert messages == [SseMessage("café", id="5")]


def test_multi_line_data_event_names_and_comments() -> None:
    messages, _ = decode(b"event: snapshot\ndata: a\ndata:b\n:comment\n\n")
    assert messages == [SseMessage("a\nb", event="snapshot")]


def test_a_message_without_its_blank_line_is_not_dispatched() -> None:
    assert decode(b"id: 9\ndata: partial")[0] == []
