"""``chatstream chat "question"`` and ``chatstream sessions``: a terminal client for the gateway,
built on the client library (``chatstream_client``).

The answer streams to stdout as it is written, with a live progress line on stderr; a dropped
or silent connection resumes by itself with Last-Event-ID, and the answer is printed once. The
sources it cites follow it on stdout; the session it went into is named on stderr, so that
``--session`` can continue it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from chatstream_client import (
    Backoff,
    ChatstreamClient,
    ChatstreamError,
    Citation,
    EndEvent,
    ErrorEvent,
    EventStream,
    HeartbeatEvent,
    ProgressEvent,
    Reconnecting,
    ResetEvent,
    TokenEvent,
)

DEFAULT_URL = "http://127.0.0.1:8080"
CANCEL_TIMEOUT_S = 3.0

STEP_LABELS = {
    "start": "starting",
    "context": "reading context",
    "analyzing": "analyzing",
    "planning": "planning",
    "validation": "checking",
    "execution": "writing",
    "memory": "remembering",
    "completion": "finishing",
}


@dataclass(frozen=True, slots=True)
class ClientSettings:
    url: str = DEFAULT_URL
    api_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("CHATSTREAM_URL", "").strip() or DEFAULT_URL,
            api_key=env.get("CHATSTREAM_API_KEY", "").strip() or None,
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``chat`` and ``sessions`` subcommands."""
    defaults = ClientSettings.from_env()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=defaults.url, help="the gateway (CHATSTREAM_URL)")
    common.add_argument(
        "--api-key", default=defaults.api_key, help="a bearer token (CHATSTREAM_API_KEY)"
    )

    chat = subparsers.add_parser(
        "chat", parents=[common], help="ask a question and stream the answer"
    )
    chat.add_argument("question", help="the message to send")
    chat.add_argument("--session", help="continue this session, by id (default: a new one)")
    chat.add_argument("--project", help="answer from this knowledge collection")
    chat.add_argument("--pipeline", help="echo or rag (default: the gateway's)")
    chat.add_argument(
        "--max-attempts", type=int, default=8, help="resumes to try after a drop (default 8)"
    )
    chat.set_defaults(run=run_chat)

    sessions = subparsers.add_parser("sessions", parents=[common], help="list your sessions")
    sessions.add_argument("--limit", type=int, default=20, help="1 to 100 (default 20)")
    sessions.set_defaults(run=run_sessions)


def _fail(message: str) -> int:
    print(f"chatstream: {message}", file=sys.stderr)
    return 1


class ProgressLine:
    """One status line on stderr, rewritten in place on a terminal, one line per change
    otherwise (so a log keeps every step)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        if self._live:
            self._stream.write(f"\r\x1b[2K{text}")
            self._shown = True
        else:
            self._stream.write(f"{text}\n")
        self._stream.flush()

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._shown = False


class AnswerPrinter:
    """Prints tokens as they come and the final answer's missing part at the end, so that the
    whole answer is on stdout exactly once."""

    def __init__(self, out: TextIO, progress: ProgressLine) -> None:
        self._out = out
        self._progress = progress
        self.printed = ""
        self._held = False

    def token(self, text: str) -> None:
        if self._held:
            return
        if not self.printed:
            self._progress.clear()
        self.printed += text
        self._out.write(text)
        self._out.flush()

    def reset(self) -> None:
        # What is on a terminal cannot be taken back: stop printing, let the end event decide.
        self._held = True

    def finish(self, content: str) -> None:
        if content.startswith(self.printed):
            self._out.write(content[len(self.printed) :])
        else:
            self._progress.show("chatstream: the answer was restarted; here it is in full")
            self._progress.clear()
            self._out.write(("\n" if self.printed else "") + content)
        self._out.write("\n")
        self._out.flush()


def run_chat(args: argparse.Namespace) -> int:
    progress = ProgressLine(sys.stderr)
    printer = AnswerPrinter(sys.stdout, progress)
    backoff = Backoff(max_attempts=args.max_attempts)
    with ChatstreamClient(args.url, args.api_key, backoff=backoff) as client:
        stream = client.chat(
            args.question, session_id=args.session, project=args.project, pipeline=args.pipeline
        )
        try:
            return _render(stream, printer, progress)
        except KeyboardInterrupt:
            # Ctrl-C: stop the job on the server too.
            _cancel(args, stream.job_id)
            print(file=sys.stderr)
            return 130
        except ChatstreamError as e:
            progress.clear()
            return _fail(str(e))
        finally:
            stream.close()
            if stream.session_id is not None:
                print(f"session: {stream.session_id}", file=sys.stderr)


def _render(stream: EventStream, printer: AnswerPrinter, progress: ProgressLine) -> int:
    steps_done = 0
    progress.show("sending…")
    for event in stream:
        match event:
            case ProgressEvent(step=step) if not printer.printed:
                steps_done += 1
                total = len(STEP_LABELS)
                progress.show(f"[{min(steps_done, total)}/{total}] {STEP_LABELS.get(step, step)}…")
            case HeartbeatEvent(phase="queued", queue_position=position) if not printer.printed:
                where = f" (position {position})" if position else ""
                progress.show(f"waiting in the queue{where}…")
            case TokenEvent(content=text):
                printer.token(text)
            case ResetEvent():
                printer.reset()
            case Reconnecting(attempt=attempt):
                # On its own line, so that it never lands in the middle of the printed answer.
                sys.stderr.write(f"\nchatstream: connection lost, reconnecting (try {attempt})\n")
            case EndEvent(content=content, citations=citations, finish_reason=reason):
                printer.finish(content)
                print_sources(citations, sys.stdout)
                return _fail("the answer was stopped") if reason == "cancelled" else 0
            case ErrorEvent(message=message, code=code):
                progress.clear()
                if printer.printed:
                    sys.stdout.write("\n")
                return _fail(f"{message} ({code})")
    return _fail("the stream ended without an answer")


def print_sources(citations: Sequence[Citation], out: TextIO) -> None:
    """After the answer: each [n] marker's document, and the sentences the answer quotes
    from it."""
    if not citations:
        return
    lines = ["", "Sources:"]
    for cited in citations:
        lines.append(f"[{cited.id}] {cited.document}")
        lines.extend(f'    "{quote}"' for quote in cited.quotes)
    out.write("\n".join(lines) + "\n")
    out.flush()


def _cancel(args: argparse.Namespace, job_id: str | None) -> None:
    if job_id is None:
        return
    try:
        with ChatstreamClient(args.url, args.api_key, heartbeat_timeout_s=CANCEL_TIMEOUT_S) as c:
            c.cancel(job_id)
    except ChatstreamError:
        pass  # Best effort: the job ends on its own anyway.


def run_sessions(args: argparse.Namespace) -> int:
    try:
        with ChatstreamClient(args.url, args.api_key) as client:
            page = client.list_sessions(args.limit)
    except ChatstreamError as e:
        return _fail(str(e))
    if not page.sessions:
        print("no sessions yet", file=sys.stderr)
        return 0
    width = max(len(s.id) for s in page.sessions)
    for s in page.sessions:
        updated = s.updated_at.strftime("%Y-%m-%d %H:%M")
        print(f"{s.id:<{width}}  {updated}  {s.message_count:>4}  {s.title}")
    return 0
