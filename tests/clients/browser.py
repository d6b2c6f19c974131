"""Debian's Chromium, driven headless by Playwright (never Playwright's own browser builds),
with an observer that records each state the last answer passes through."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_INSTALLED = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# A bound on every wait, far above what the page needs, so a broken page fails instead of hanging.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "clients"

# Runs before the page's own scripts: every change of the last answer's text, state or status
# line is appended to window.__seen, so a test can tell which states were on screen.
OBSERVER = """
window.__seen = { texts: [], statuses: [] };
new MutationObserver(() => {
  const answers = document.querySelectorAll(".message.assistant");
  const last = answers[answers.length - 1];
  if (!last) return;
  const text = last.querySelector(".answer-text")?.textContent ?? "";
  const state = last.dataset.state ?? "";
  const texts = window.__seen.texts;
  const previous = texts[texts.length - 1];
  if (!previous || previous.text !== text || previous.state !== state) texts.push({ text, state });
  const status = last.querySelector(".status")?.textContent ?? "";
  const statuses = window.__seen.statuses;
  if (status && statuses[statuses.length - 1] !== status) statuses.push(status);
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"""


@asynccontextmanager
async def chromium_page(
    viewport: ViewportSize = DESKTOP, api_key: str | None = None
) -> AsyncIterator[Page]:
    """A fresh browser and page; with ``api_key``, the key is already in localStorage."""
    if not CHROMIUM_INSTALLED:
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: .ci/run installs it (apt-get install chromium)"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport=viewport)
            context.set_default_timeout(WAIT_MS)
            await context.add_init_script(OBSERVER)
            if api_key is not None:
                await context.add_init_script(
                    f"localStorage.setItem('chatstream.apiKey', {json.dumps(api_key)});"
                )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert errors == [], f"the page threw: {errors}"
        finally:
            await browser.close()


async def seen(page: Page) -> dict[str, list[Any]]:
    value = await page.evaluate("window.__seen")
    assert isinstance(value, dict)
    return value


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path
