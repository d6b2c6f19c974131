"""``chatstream ingest DIR --project NAME`` on the real Redis: every Markdown, text and HTML file,
named by its relative path; running it twice replaces rather than duplicates. What it cannot
read is refused or reported on stderr, never stored, and ``chatstream documents`` lists and
deletes what a project holds."""

from __future__ import annotations

import asyncio
import os
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
        assert await chatstream("ingest", str(tmp_path), "--project", "handbook") == 0
    assert "ingested 3 documents" in capsys.readouterr().out

    documents = await store.documents("handbook")
    assert sorted(d.name for d in documents) == ["guide/start.md", "notes.txt", "page.html"]
    assert {d.format for d in documents} == {"markdown", "text", "html"}
    snapshot = await store.snapshot("handbook")
    assert "Run make stack to start." in {c.text.split("\n\n")[-1] for c in snapshot.chunks}


async def test_ingest_refuses_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await chatstream("ingest", str(tmp_path / "missing"), "--project", "x") == 2
    output = capsys.readouterr()
    assert output.out == "" and "is not a directory" in output.err


@pytest.fixture
def on_redis(namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CHATSTREAM_NAMESPACE", namespace)


async def test_ingest_refused_binary_files_saved_as_text(
    tmp_path: Path,
    on_redis: None,
    store: KnowledgeStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "notes.txt").write_text("Plain notes about the queue.")
    (tmp_path / "random.md").write_bytes(os.urandom(4096).replace(b"\x00", b"\x01"))
    (tmp_path / "program.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + os.urandom(2048))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))

    assert await chatstream("ingest", str(tmp_path), "--project", "p") == 1
    err = capsys.readouterr().err
    assert "refused random.md: not UTF-8 text" in err
    assert "refused program.txt: a binary file, not text" in err
    assert "refused latin1.txt: not UTF-8 text" in err
    assert [d.name for d in await store.documents("p")] == ["notes.txt"]


async def test_ingest_did_not_mention_skipped_files(
    tmp_path: Path, on_redis: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path)
    (tmp_path / "manual.pdf").write_bytes(b"%PDF-1.7")
    (tmp_path / ".hidden.md").write_text("An editor's backup.")

    assert await chatstream("ingest", str(tmp_path), "--project", "p") == 0
    output = capsys.readouterr()
    assert "skipped image.png: not Markdown, text or HTML" in output.err
    assert "skipped manual.pdf: not Markdown, text or HTML" in output.err
    assert ".hidden.md" not in output.err
    assert "ingested 3 documents" in output.out and "skipped" not in output.out


async def test_ingest_of_an_empty_directory_exited_0(
    tmp_path: Path,
    on_redis: None,
    store: KnowledgeStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await store.add_document("p", "kept.md", "Still here.", "markdown")
    (tmp_path / "only.pdf").write_bytes(b"%PDF-1.7")
    for directory in (tmp_path / "empty", tmp_path):
        directory.mkdir(exist_ok=True)
        assert await chatstream("ingest", str(directory), "--project", "p") == 1
        output = capsys.readouterr()
        assert output.out == "" and "holds no document to ingest" in output.err
    # Nothing to ingest never empties the collection.
    assert [d.name for d in await store.documents("p")] == ["kept.md"]


async def test_ingest_printed_a_traceback_when_redis_was_down(
    tmp_path: Path,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tree(tmp_path)
    # A port nothing listens on: the outage, without touching the shared Redis.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CHATSTREAM_NAMESPACE", namespace)
    for argv in (
        ("ingest", str(tmp_path), "--project", "p"),
        ("documents", "list", "--project", "p"),
        ("documents", "delete", "--project", "p", "notes.txt"),
    ):
        assert await chatstream(*argv) == 1
        output = capsys.readouterr()
        [line] = output.err.strip().splitlines()
        assert line.startswith(f"chatstream {argv[0]}: Redis failed:"), output.err
        assert output.out == ""


@pytest.fixture
async def ingested(tmp_path: Path, on_redis: None, capsys: pytest.CaptureFixture[str]) -> Path:
    """A directory of three documents, ingested into the project ``p``."""
    write_tree(tmp_path)
    assert await chatstream("ingest", str(tmp_path), "--project", "p") == 0
    capsys.readouterr()
    return tmp_path


async def test_ingest_kept_documents_of_deleted_files(
    ingested: Path, store: KnowledgeStore, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path = ingested
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "guide" / "start.md").write_bytes(b"\x00binary now")
    assert await chatstream("ingest", str(tmp_path), "--project", "p") == 1
    assert "removed 2" in capsys.readouterr().out
    assert [d.name for d in await store.documents("p")] == ["page.html"]
    snapshot = await store.snapshot("p")
    assert {c.document for c in snapshot.chunks} == {"page.html"}


async def test_ingest_progress_bar_counts_chunks(
    tmp_path: Path, on_redis: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sentences = " ".join(f"Sentence number {i} is here." for i in range(200))
    (tmp_path / "long.txt").write_text(sentences)
    assert await chatstream("ingest", str(tmp_path), "--project", "p") == 0
    output = capsys.readouterr()
    chunks = int(output.out.split("(")[1].split(" chunks")[0])
    assert chunks > 1
    assert f"{chunks}chunk" in output.err.replace(" ", "")


async def test_there_was_no_command_to_list_or_delete_documents(
    ingested: Path, store: KnowledgeStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await chatstream("documents", "list", "--project", "p") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in listed] == [d.name for d in await store.documents("p")]
    page = next(d for d in await store.documents("p") if d.name == "page.html")

    argv = ("documents", "delete", "--project", "p", "notes.txt", page.id, "missing.md")
    assert await chatstream(*argv) == 1
    output = capsys.readouterr()
    assert output.out.splitlines() == ["deleted notes.txt", "deleted page.html"]
    assert "no document 'missing.md' in 'p'" in output.err
    assert [d.name for d in await store.documents("p")] == ["guide/start.md"]

    assert await chatstream("documents", "list", "--project", "bad name") == 2


async def chatstream(*argv: str) -> int | str | None:
    """The exit status of ``chatstream ARGV``. The command runs its own event loop, so it runs
    in a thread of its own here."""
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(main, list(argv))
    return exited.value.code
