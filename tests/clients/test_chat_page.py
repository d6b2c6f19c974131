"""The chat page in a real browser against a gateway on the real servers: it streams an answer
through visible states, stops on the stop button, resumes after its connection is cut, and
answers from a picked project with each source's document name and quote."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp
from playwright.async_api import Page, expect

from tests.clients.browser import PHONE, chromium_page, screenshot, seen
from tests.clients.conftest import LiveGateway
from tests.clients.cut_proxy import CutProxy
from tests.clients.routes import (
    CANCEL,
    MESSAGE_STREAM,
    PROJECT_STREAM,
    RESUME,
    SESSIONS,
    require_routes,
)
from tests.conftest import API_KEY, AUTH

QUESTION = (
    "Tell me how a streaming answer reaches the browser one word at a time, "
    "and what happens when the network drops in the middle of it"
)
ANSWER = " ".join(QUESTION.split())
# Long enough that, at 200 ms a word, it cannot end before the stop button is pressed.
LONG_QUESTION = " ".join([QUESTION] * 4)

# Markup in the name must show as the characters it is made of.
DOCUMENT_NAME = "harbour <b>guide</b>.md"
DOCUMENT = (
    "# The harbour guide\n\n"
    "The ferry to Lindholm leaves the north pier every forty minutes from six in the morning.\n"
    "Tickets for the ferry are sold at the kiosk beside the lighthouse.\n\n"
    "## Fishing\n\n"
    "Fishing from the breakwater needs a permit from the harbour master.\n"
)
PROJECT_QUESTION = "How often does the ferry to Lindholm leave the north pier?"
QUOTE = "The ferry to Lindholm leaves the north pier every forty minutes from six in the morning."


async def ask(page: Page, question: str) -> None:
    await page.fill("#prompt", question)
    await page.press("#prompt", "Enter")


def streaming_texts(states: list[dict[str, str]]) -> list[str]:
    """The distinct non-empty answer texts shown while the answer was still streaming."""
    texts = [s["text"] for s in states if s["state"] == "streaming" and s["text"]]
    return list(dict.fromkeys(texts))


async def test_the_page_is_served_and_asks_for_an_api_key(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        async with session.get(f"{base_url}/static/chatstream.js") as response:
            assert response.status == 200
            assert response.content_type == "text/javascript"
        async with session.get(f"{base_url}/static/..%2Fapp.py") as response:
            assert response.status == 404
    async with chromium_page(PHONE) as page:
        await page.goto(f"{base_url}/")
        await expect(page.locator("#key-dialog")).to_be_visible()
        await expect(page.locator("#api-key")).to_be_focused()
        await screenshot(page, "key-dialog-phone")


async def test_a_refused_key_is_asked_for_again_in_place(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    await require_routes(base_url, SESSIONS)
    async with chromium_page(api_key="not-a-key") as page:
        await page.goto(f"{base_url}/")
        await expect(page.locator("#key-error")).to_contain_text("not accepted")
        await expect(page.locator("#key-dialog")).to_be_visible()


async def test_the_answer_streams_through_visible_states_to_the_whole_answer(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=60)
    await require_routes(base_url, SESSIONS, MESSAGE_STREAM)
    async with chromium_page() as page:
        await page.goto(f"{base_url}/")
        # The first visit asks for the key, as a person would meet the page.
        await page.fill("#api-key", API_KEY)
        await page.click("#key-form button[type=submit]")
        await page.click(".switch")
        async with page.expect_request(lambda r: r.url.endswith("/messages/stream")) as sent:
            await ask(page, QUESTION)
        body = json.loads((await sent.value).post_data or "{}")
        assert body == {"content": QUESTION, "simple_language": True}
        answer = page.locator(".message.assistant").last
        await expect(answer.locator(".answer-text")).not_to_be_empty()
        await expect(answer.locator(".step").first).to_be_visible()
        await expect(answer).to_have_attribute("data-state", "complete")
        await expect(answer.locator(".answer-text")).to_have_text(ANSWER)
        texts = streaming_texts((await seen(page))["texts"])
        assert len(texts) >= 3, texts
        assert all(ANSWER.startswith(text) for text in texts), texts
        steps = await answer.locator(".step").all_text_contents()
        assert steps[:2] == ["Starting", "Reading context"], steps
        # The new session is in the list, titled after the question.
        await expect(page.locator(".session-title").first).to_have_text(QUESTION[:80])
        await screenshot(page, "answer-desktop")
    # A new visit at phone width shows the conversation from its stored history.
    async with chromium_page(PHONE, api_key=API_KEY) as page:
        await page.goto(f"{base_url}/")
        await expect(page.locator(".message.user .bubble")).to_have_text(QUESTION)
        await expect(page.locator(".message.assistant .answer-text")).to_have_text(ANSWER)
        await screenshot(page, "history-phone")


async def test_the_stop_button_stops_the_answer(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway(token_delay_ms=200)
    await require_routes(base_url, SESSIONS, MESSAGE_STREAM, CANCEL)
    async with chromium_page(api_key=API_KEY) as page:
        await page.goto(f"{base_url}/")
        await ask(page, LONG_QUESTION)
        answer = page.locator(".message.assistant").last
        await expect(answer.locator(".answer-text")).not_to_be_empty()
        stop = page.locator("#send")
        await expect(stop).to_have_attribute("aria-label", "Stop")
        await stop.click()
        await expect(answer).to_have_attribute("data-state", "cancelled")
        await expect(answer.locator(".answer-meta")).to_contain_text("Stopped")
        await expect(stop).to_have_attribute("aria-label", "Send")
        shown = await answer.locator(".answer-text").text_content()
        whole = " ".join(LONG_QUESTION.split())
        assert shown is not None and whole.startswith(shown) and len(shown) < len(whole)
        await screenshot(page, "stopped-desktop")


async def test_the_page_resumes_after_a_cut_and_ends_with_the_whole_answer(
    live_gateway: LiveGateway, cut_proxy: Callable[[str], Awaitable[CutProxy]]
) -> None:
    base_url = await live_gateway(token_delay_ms=60)
    await require_routes(base_url, SESSIONS, MESSAGE_STREAM, RESUME)
    proxy = await cut_proxy(base_url)
    async with chromium_page(api_key=API_KEY) as page:
        await page.goto(f"{proxy.url}/")
        await ask(page, QUESTION)
        answer = page.locator(".message.assistant").last
        await expect(answer).to_have_attribute("data-state", "complete")
        await expect(answer.locator(".answer-text")).to_have_text(ANSWER)
        assert proxy.cuts == 1
        observed = await seen(page)
        assert "Reconnecting…" in observed["statuses"], observed["statuses"]
        texts = streaming_texts(observed["texts"])
        assert all(ANSWER.startswith(text) for text in texts), texts
        resumes = proxy.requests_for("/api/v1/streams/")
        assert resumes and b"\r\nlast-event-id: " in resumes[0].lower(), proxy.request_heads
        await screenshot(page, "resumed-desktop")


async def test_an_answer_from_a_picked_project_shows_each_sources_document_and_quote(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(default_pipeline="rag")
    await require_routes(base_url, SESSIONS, PROJECT_STREAM)
    async with aiohttp.ClientSession() as session:
        upload = {"name": DOCUMENT_NAME, "content": DOCUMENT}
        async with session.post(
            f"{base_url}/api/v1/projects/harbour/documents", json=upload, headers=AUTH
        ) as response:
            assert response.status == 201, await response.text()
    async with chromium_page(api_key=API_KEY) as page:
        await page.goto(f"{base_url}/")
        # A project the user cannot read is named as such before anything is asked.
        await page.fill("#project", "nobodys")
        await page.press("#project", "Enter")
        await expect(page.locator("#project-status")).to_have_text("No such project")
        await page.fill("#project", "harbour")
        await page.press("#project", "Enter")
        await expect(page.locator("#project-status")).to_have_text("1 document")
        async with page.expect_request(lambda r: r.url.endswith("/chat-stream")) as sent:
            await ask(page, PROJECT_QUESTION)
        request = await sent.value
        assert request.url == f"{base_url}/api/v1/projects/harbour/chat-stream"
        body = json.loads(request.post_data or "{}")
        assert body["message"] == PROJECT_QUESTION and body["session_id"]

        answer = page.locator(".message.assistant").last
        await expect(answer).to_have_attribute("data-state", "complete")
        await expect(answer.locator(".answer-text")).to_contain_text("forty minutes")
        source = answer.locator(".citation").first
        await expect(source.locator(".citation-index")).to_have_text("1")
        await expect(source.locator(".citation-document")).to_have_text(DOCUMENT_NAME)
        await expect(source.locator(".citation-quote").first).to_have_text(QUOTE)
        await expect(source.locator("b")).to_have_count(0)
        await expect(answer).not_to_contain_text("Source 1")
        await screenshot(page, "sources-desktop")
        # A later visit shows the stored answer with the same source, the project still picked.
        await page.reload()
        await expect(page.locator("#project")).to_have_value("harbour")
        source = page.locator(".message.assistant .citation").first
        await expect(source.locator(".citation-document")).to_have_text(DOCUMENT_NAME)
        await expect(source.locator(".citation-quote").first).to_have_text(QUOTE)
