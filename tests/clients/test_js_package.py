"""The npm package in clients/js: the React hook rendered by React (Vitest, jsdom) against a
local contract server and a real gateway on the real servers, its type declarations checked by
TypeScript, and `npm pack`'s tarball installed into a fresh project and imported from Node."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from shared.events import PROGRESS_STEPS
from tests.clients.conftest import LiveGateway
from tests.clients.routes import CANCEL, RESUME, SESSIONS, require_routes
from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clients" / "js"
LOCK = PACKAGE / "package-lock.json"
# Written into node_modules after `npm ci`: the lock it was installed from.
INSTALLED_LOCK = PACKAGE / "node_modules" / ".chatstream-lock-sha256"
NPM_TIMEOUT_S = 600
# The live-gateway tests of test/react/live-gateway.test.js, which must run here, not be skipped.
LIVE_TESTS = {
    "a question about an uploaded document ends with its name and a quote as the source",
    "stop cancels the answer on the server, and a second hook resumes a running job by id",
}
# The tarball holds the sources, their types and the README, and nothing of the tests.
PACKED_FILES = {
    "package/package.json",
    "package/README.md",
    "package/src/chatstream.js",
    "package/src/chatstream.d.ts",
    "package/src/sse.js",
    "package/src/chat-state.js",
    "package/src/react.js",
    "package/src/react.d.ts",
}

pytestmark = pytest.mark.timeout(NPM_TIMEOUT_S)


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not installed: `make test-tools` installs Node.js and npm")
    return found


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def dev_modules() -> Path:
    """clients/js/node_modules exactly as package-lock.json pins it; `npm ci` runs again only
    when the lock has changed since the last install."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not INSTALLED_LOCK.exists() or INSTALLED_LOCK.read_text() != digest:
        run(npm(), "ci", "--no-audit", "--no-fund", cwd=PACKAGE)
        INSTALLED_LOCK.write_text(digest)
    return PACKAGE / "node_modules"


def vitest(report: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the hook's Vitest suite and read its JSON report."""
    run(
        str(PACKAGE / "node_modules" / ".bin" / "vitest"),
        "run",
        "--reporter=default",
        "--reporter=json",
        f"--outputFile.json={report}",
        cwd=PACKAGE,
        env={**os.environ, **env},
    )
    results: dict[str, Any] = json.loads(report.read_text())
    return results


async def test_the_react_hook_renders_answers_from_a_contract_server_and_a_real_gateway(
    dev_modules: Path, live_gateway: LiveGateway, tmp_path: Path
) -> None:
    base_url = await live_gateway(token_delay_ms=60)
    await require_routes(base_url, SESSIONS, RESUME, CANCEL)
    live = {
        "CHATSTREAM_TEST_URL": base_url,
        "CHATSTREAM_TEST_API_KEY": API_KEY,
        "CHATSTREAM_TEST_STEPS": ",".join(PROGRESS_STEPS),
    }
    # In a thread: the gateway under test runs on this event loop.
    results = await asyncio.to_thread(vitest, tmp_path / "vitest.json", live)
    outcomes = {
        test["title"]: test["status"]
        for file in results["testResults"]
        for test in file["assertionResults"]
    }
    assert len(outcomes) > len(LIVE_TESTS), outcomes
    assert set(outcomes.values()) == {"passed"}, outcomes
    assert outcomes.keys() >= LIVE_TESTS, outcomes


def test_the_type_declarations_describe_the_contract(dev_modules: Path) -> None:
    """test/types/usage.ts uses the package by its own name, and expects the old citation
    fields and unknown statuses to be type errors."""
    run(str(dev_modules / ".bin" / "tsc"), "-p", "test/types", cwd=PACKAGE)


def test_the_packed_tarball_installs_and_both_entry_points_import(
    dev_modules: Path, tmp_path: Path
) -> None:
    packed = json.loads(
        run(npm(), "pack", "--json", "--pack-destination", str(tmp_path), cwd=PACKAGE)
    )
    tarball = tmp_path / packed[0]["filename"]
    assert packed[0]["name"] == "chatstream" and packed[0]["version"] == "0.1.0"
    with tarfile.open(tarball) as archive:
        assert set(archive.getnames()) == PACKED_FILES
        member = archive.extractfile("package/package.json")
        assert member is not None
        manifest = json.load(member)
    assert "dependencies" not in manifest, "the package has no runtime dependencies"

    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true, "type": "module"}')
    react = json.loads((dev_modules / "react" / "package.json").read_text())["version"]
    # React from the cache `npm ci` filled: the optional peer a React front end brings itself.
    run(
        npm(),
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        str(tarball),
        f"react@{react}",
        cwd=app,
    )
    (app / "check.mjs").write_text(
        """
import { ChatstreamClient, ChatstreamError, SseParser } from "chatstream";
import { useChatStream, chatStreamReducer, initialChatStreamState } from "chatstream/react";
const client = new ChatstreamClient({ baseUrl: "http://127.0.0.1:1", apiKey: "k" });
const state = chatStreamReducer(initialChatStreamState, { type: "begin" });
console.log(JSON.stringify({
  client: typeof client.projectChat,
  error: new ChatstreamError("x", { status: 404 }).status,
  parser: typeof SseParser,
  hook: typeof useChatStream,
  status: state.status,
}));
"""
    )
    imported = json.loads(run("node", "check.mjs", cwd=app))
    assert imported == {
        "client": "function",
        "error": 404,
        "parser": "function",
        "hook": "function",
        "status": "streaming",
    }
    # A TypeScript front end finds the declarations through the installed package's exports.
    (app / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "module": "nodenext",
                    "moduleResolution": "nodenext",
                    "target": "es2022",
                    "lib": ["es2022", "dom"],
                    "types": [],
                },
                "files": ["check.ts"],
            }
        )
    )
    (app / "check.ts").write_text(
        """
import type { Citation } from "chatstream";
import type { UseChatStream } from "chatstream/react";
export const sources = (chat: UseChatStream): string[] =>
  chat.citations.map((c: Citation) => `${c.document}: ${c.quotes.join(" ")}`);
"""
    )
    run(str(dev_modules / ".bin" / "tsc"), "-p", str(app), cwd=app)
