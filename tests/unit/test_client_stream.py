"""The per-client buffer: order, dedupe at the replay/live seam, token merging, the bound."""

from __future__ import annotations

from gateway.client_stream import ClientStream
from gateway.ticker import HeartbeatTicker
from shared import events
from shared.events import Event

TICKER = HeartbeatTicker(5.0)


def frame(seq: int, kind: str = events.TOKEN, text: str = "x") -> Event:
    payload = events.token_payload(text) if kind == events.TOKEN else {"progress": {"step": "s"}}
    return Event("job", seq, kind, payload)


def test_replay_and_held_live_frames_merge_in_order_without_duplicates() -> None:
    stream = ClientStream(max_buffer_bytes=1 << 20, after_seq=2, ticker=TICKER)
    stream.hold_live()
    stream.deliver(frame(5))
    stream.deliver(frame(6))
    stream.release_live([frame(3), frame(4), frame(5)])
    stream.deliver(frame(6))
    stream.deliver(frame(7))
    assert [f.seq for f in stream.take()] == [3, 4, 5, 6, 7]


def test_a_full_buffer_merges_consecutive_tokens_under_the_last_seq() -> None:
    one = len(frame(1, text="ab").sse)
    stream = ClientStream(max_buffer_bytes=one * 4, ticker=TICKER)
    stream.deliver(frame(1, events.PROGRESS))
    for seq, text in enumerate(["ab", "cd", "ef", "gh", "ij"], start=2):
        stream.deliver(frame(seq, text=text))
    taken = stream.take()
    assert not stream.overflowed
    # Over budget at the fifth frame: the four tokens so far become one frame under seq 5.
    assert [f.type for f in taken] == [events.PROGRESS, events.TOKEN, events.TOKEN]
    assert [f.seq for f in taken] == [1, 5, 6]
    assert taken[1].payload == {"content": "abcdefgh", "delta": "abcdefgh", "done": False}
    assert taken[1].sse.startswith(b"id: 5\ndata: ")
    assert stream.merged_frames == 3


def test_a_client_still_over_budget_after_merging_overflows_and_holds_nothing() -> None:
    stream = ClientStream(max_buffer_bytes=2048, ticker=TICKER)
    for seq in range(1, 40):
        stream.deliver(frame(seq, events.PROGRESS))
    assert stream.overflowed
    assert stream.buffered_bytes == 0
    stream.deliver(frame(100))
    assert stream.take() == []
