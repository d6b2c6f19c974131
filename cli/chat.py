"""``chatstream chat "question"`` and ``chatstream sessions``: a terminal client for the gateway.

The answer streams to stdout as it is written, with a live progress line on stderr; a dropped
or silent connection resumes by itself with Last-Event-ID, and the answer is printed once."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from cli.follow import RECONNECTING, ApiError, Backoff, Follower, raise_for_error

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
    chat.add_argument("--session", help="continue this session (default: a new one)")
    chat.add_argument("--pipeline", help="echo or rag (default: the gateway's)")
    chat.add_argument(
        "--max-attempts", type=int, default=8, help="resumes to try after a drop (default 8)"
    )
    chat.set_defaults(run=run_chat)

    sessions = subparsers.add_parser("sessions", parents=[common], help="list your sessions")
    sessions.add_argument("--limit", type=int, default=20, help="1 to 100 (default 20)")
    sessions.set_defaults(run=run_sessions)


def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}


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


async def _chat(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"text": args.question}
    if args.session:
        body["conversation_id"] = args.session
    if args.pipeline:
        body["pipeline"] = args.pipeline
    progress = ProgressLine(sys.stderr)
    printer = AnswerPrinter(sys.stdout, progress)
    async with aiohttp.ClientSession(headers=_auth_headers(args)) as session:
        follower = Follower(
            session,
            args.url.rstrip("/"),
            "/api/v1/chat/stream",
            body,
            backoff=Backoff(max_attempts=args.max_attempts),
        )
        try:
            return await _render(follower, printer, progress)
        except asyncio.CancelledError:
            # Ctrl-C: stop the job on the server too, then let the cancellation go on.
            if follower.state.job_id is not None:
                await asyncio.shield(_cancel(session, args.url, follower.state.job_id))
            raise


async def _render(follower: Follower, printer: AnswerPrinter, progress: ProgressLine) -> int:
    steps_done = 0
    progress.show("sending…")
    async for event in follower.events():
        kind = event["type"]
        if kind == "progress":
            steps_done += 1
            step = str(event.get("progress", {}).get("step", ""))
            if not printer.printed:
                total = len(STEP_LABELS)
                label = STEP_LABELS.get(step, step)
                progress.show(f"[{min(steps_done, total)}/{total}] {label}…")
        elif kind == "heartbeat" and event.get("phase") == "queued" and not printer.printed:
            position = event.get("queuePosition")
            progress.show(f"waiting in the queue{f' (position {position})' if position else ''}…")
        elif kind == "token":
            printer.token(str(event.get("content", "")))
        elif kind == "reset":
            printer.reset()
        elif kind == RECONNECTING:
            # On its own line, so that it never lands in the middle of the printed answer.
            sys.stderr.write(
                f"\nchatstream: connection lost, reconnecting (try {event['attempt']})\n"
            )
        elif kind == "end":
            printer.finish(str(event.get("content", "")))
            reason = event.get("finishReason")
            if reason == "cancelled":
                return _fail("the answer was stopped")
            return 0
        elif kind == "error":
            progress.clear()
            if printer.printed:
                sys.stdout.write("\n")
            return _fail(f"{event.get('error')} ({event.get('code')})")
    return _fail("the stream ended without an answer")


async def _cancel(session: aiohttp.ClientSession, url: str, job_id: str) -> None:
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT_S):
            await session.post(f"{url.rstrip('/')}/api/v1/streams/{job_id}/cancel")
    except (aiohttp.ClientError, TimeoutError):
        pass  # Best effort: the job ends on its own anyway.


def run_chat(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_chat(args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except ApiError as e:
        return _fail(f"{e} ({e.code})")


async def _sessions(args: argparse.Namespace) -> int:
    url = f"{args.url.rstrip('/')}/api/v1/sessions"
    async with (
        aiohttp.ClientSession(headers=_auth_headers(args)) as session,
        session.get(url, params={"limit": str(args.limit)}) as response,
    ):
        await raise_for_error(response)
        body = await response.json()
    sessions = body.get("sessions", [])
    if not sessions:
        print("no sessions yet", file=sys.stderr)
        return 0
    width = max(len(str(s["id"])) for s in sessions)
    for s in sessions:
        count = s.get("messageCount", 0)
        print(f"{s['id']:<{width}}  {s.get('updatedAt', '')[:16]:<16}  {count:>4}  {s['title']}")
    return 0


def run_sessions(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_sessions(args))
    except ApiError as e:
        return _fail(f"{e} ({e.code})")
    except aiohttp.ClientError as e:
        return _fail(f"cannot reach the gateway: {e}")
