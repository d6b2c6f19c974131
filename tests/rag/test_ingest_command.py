"""``chatstream ingest DIR --project NAME`` on the real Redis: every Markdown, text and HTML file,
named by its relative path; running it twice replaces rather than duplicates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cli import main
from shared.knowledge import KnowledgeStore
from tests.conftest import REDIS_URL


def write_tree(root: Path) -> None:
    (root / "guide").mkdir()
    (root / "guide" / "start.md").write_text("# Start\n\nRun `make stack` to start.")
    (root / "notes.txt").write_text("Plain notes about the queue.")
    (root / "page.html").write_text("<html><body><p>An HTML page.</p></body></html>")
    (root / "image.png").write_bytes(b"\x89PNG")


async def test_ingest_reads_markdown_text_and_html_and_is_idempotent(
    tmp_path: Path,
    namespace: str,
    store: KnowledgeStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tree(tmp_path)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CHATSTREAM_NAMESPACE", namespace)
    for _ in range(2):
        with pytest.raises(SystemExit) as exited:
            # The command runs its own event loop, so it runs in a thread of its own here.
            await _in_thread(["ingest", str(tmp_path), "--project", "handbook"])
        assert exited.value.code == 0
    assert "ingested 3 documents" in capsys.readouterr().out

    documents = await store.documents("handbook")
    assert sorted(d.name for d in documents) == ["guide/start.md", "notes.txt", "page.html"]
    assert {d.format for d in documents} == {"markdown", "text", "html"}
    snapshot = await store.snapshot("handbook")
    assert "Run make stack to start." in {c.text.split("\n\n")[-1] for c in snapshot.chunks}


async def test_ingest_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        await _in_thread(["ingest", str(tmp_path / "missing"), "--project", "x"])
    assert exited.value.code == 2


async def _in_thread(argv: list[str]) -> None:
    await asyncio.to_thread(main, argv)
