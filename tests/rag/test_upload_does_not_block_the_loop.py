"""Regression: one upload froze every user's streams. Parsing a document nested thousands deep
cost the square of its depth, on the event loop. Now the worst documents are refused (422) or
parsed off the loop, while another client's stream keeps its heartbeats and ``/healthz``
answers.

The loop is checked with generous bounds, not the heartbeat period itself: on a shared machine
a scheduling hiccup is not a regression, while the old code held the loop for about ten
seconds."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiohttp import ClientResponse

from shared.knowledge.text import (
    MAX_DOCUMENT_CHARS,
    MAX_NESTING_DEPTH,
    DocumentRefused,
    to_text,
)
from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory
from tests.support.sse import iter_sse

DOCS = "/api/v1/projects/deep/documents"
HEARTBEAT_INTERVAL_S = 0.2
# Far above the heartbeat period, far below the ten seconds the old code blocked for.
MAX_GAP_S = 1.0

# Each under the 64 KiB body limit.
REFUSED = {
    "deep html divs": ("<div>" * 12000 + "x", "html"),
    "deep html tables": ("<table><tr><td>" * 4000 + "x", "html"),
    "raw html divs in markdown": ("<div>" * 12000 + "x", "markdown"),
    "nested markdown quotes": ("> " * 20000 + "x", "markdown"),
    "nested markdown lists": ("- " * 20000 + "x", "markdown"),
    "nested ordered lists": ("1. " * 15000 + "x", "markdown"),
}
# Flat, but each unclosed bracket made markdown-it-py rescan the paragraph, each unclosed tag,
# attribute or comment made Python's html.parser rescan the document, and Beautiful Soup took a
# second over tens of thousands of tiny elements.
ACCEPTED = {
    "unclosed images": ("![" * 30000, "markdown"),
    "unclosed links": ("[a" * 30000, "markdown"),
    "unclosed links around images": ("[![" * 20000, "markdown"),
    "alternating emphasis": ("**a" * 20000, "markdown"),
    "many code spans": ("`a" * 30000, "markdown"),
    "unclosed start tags": ("<p " * 20000, "html"),
    "unclosed tag names": ("<a" * 30000, "html"),
    "unclosed attribute values": ('<a href="<' * 5000, "html"),
    "unclosed comments": ("<!--" * 15000, "html"),
}


async def test_the_worst_uploads_leave_other_streams_and_healthz_on_schedule(
    namespace: str, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(
        ConnectionSettings(namespace=namespace),
        heartbeat_interval_s=HEARTBEAT_INTERVAL_S,
        worker={"echo_token_delay_ms": 200},
    )
    stream = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": " ".join(["word"] * 200), "pipeline": "echo"},
        headers=AUTH,
    )
    assert stream.status == 200
    job_id = stream.headers["X-Job-Id"]
    arrivals: list[float] = []
    # Set once the stream beats, and once enough beats span the uploads to check their gaps.
    beating, spanned = asyncio.Event(), asyncio.Event()
    listening = asyncio.create_task(_heartbeats(stream, arrivals, {2: beating, 6: spanned}))
    await beating.wait()

    async def healthz_while(upload: asyncio.Task[ClientResponse]) -> list[float]:
        latencies: list[float] = []
        while not upload.done() or not latencies:
            started = time.monotonic()
            assert (await gateway.get("/healthz")).status == 200
            latencies.append(time.monotonic() - started)
        return latencies

    for label, (content, document_format) in {**REFUSED, **ACCEPTED}.items():
        body = {"name": label, "format": document_format, "content": content}
        upload = asyncio.create_task(gateway.post(DOCS, json=body, headers=AUTH))
        latencies = await healthz_while(upload)
        response = upload.result()
        if label in REFUSED:
            assert response.status == 422, label
            error = (await response.json())["error"]
            assert error["code"] == "validation_error"
            assert error["details"][0]["field"] == "content"
            assert "nested deeper than" in error["details"][0]["message"]
        else:
            assert response.status == 201, label
        assert max(latencies) < MAX_GAP_S, (label, latencies)

    await spanned.wait()
    cancelled = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
    assert cancelled.status == 202
    await listening
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) < MAX_GAP_S, gaps


async def _heartbeats(
    stream: ClientResponse, arrivals: list[float], at_count: dict[int, asyncio.Event]
) -> None:
    async for message in iter_sse(stream):
        if message.type == "heartbeat":
            arrivals.append(time.monotonic())
            if len(arrivals) in at_count:
                at_count[len(arrivals)].set()


def test_the_nesting_bound_refuses_one_level_past_it_and_nothing_shallower() -> None:
    depth = MAX_NESTING_DEPTH
    assert to_text("<div>" * depth + "x", "html") == "x"
    with pytest.raises(DocumentRefused, match="nested deeper than"):
        to_text("<div>" * (depth + 1) + "x", "html")
    # Markdown meets the bound through the HTML it renders to: each quote is one element, and
    # the innermost holds the text's <p>.
    assert to_text("> " * (depth - 1) + "x", "markdown") == "x"
    with pytest.raises(DocumentRefused, match="nested deeper than"):
        to_text("> " * depth + "x", "markdown")


def test_an_overlong_document_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(DocumentRefused, match="longer than"):
        to_text("a" * (MAX_DOCUMENT_CHARS + 1), "html")
