"""What the Docker image holds, built the way the Dockerfile builds it but without a Docker
engine: only the files .dockerignore lets through, the locked dependencies without the dev
group, then the gateway, on the real servers, answering compose's own healthcheck command and
serving the chat page's files."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest
import yaml

from launcher.ports import free_port
from shared.settings import ConnectionSettings

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools/bin/uv"
START_TIMEOUT_S = 20.0


def build_context(target: Path) -> None:
    """Copy what .dockerignore admits: it ignores everything (``*``), then lists exceptions."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "the test reads an allow-list .dockerignore"
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rule in rules[1:]:
        if not rule.startswith("!"):
            continue
        relative = rule[1:].rstrip("/")
        source, destination = ROOT / relative, target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=ignored)
        else:
            shutil.copy(source, destination)


def install_runtime(context: Path, venv: Path) -> Path:
    """The Dockerfile's dependency layer: the lock's runtime packages into ``venv``, whose
    python is returned. It must not carry the dev group."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [
            str(UV),
            "sync",
            "--frozen",
            "--no-dev",
            "--no-install-project",
            "--no-editable",
            "--python",
            sys.executable,
        ],
        cwd=context,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The project layer: chatstream itself, built and installed as a package.
    subprocess.run(
        [str(UV), "sync", "--frozen", "--no-dev", "--no-editable", "--python", sys.executable],
        cwd=context,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    python = venv / "bin/python"
    dev_only = subprocess.run(
        [str(python), "-c", "import pytest"], capture_output=True, timeout=60, check=False
    )
    assert dev_only.returncode != 0, "the image must not carry the dev dependencies"
    # The image's `chatstream` command (ingest and friends) comes with the package, and
    # reports the project's version from its metadata, away from any source tree.
    command = subprocess.run(
        [str(venv / "bin/chatstream"), "--version"],
        cwd=venv,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert command.returncode == 0, command.stderr
    assert command.stdout.strip() == f"chatstream {project_version()}"
    # The client library is in the venv itself, not linked to the build context.
    library = subprocess.run(
        [str(python), "-c", "import chatstream_client; print(chatstream_client.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert library.stdout.startswith(str(venv)), library.stdout
    return python


def project_version() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make install`")
async def test_the_image_runs_the_gateway_with_runtime_dependencies_only(
    tmp_path: Path, real_connections: ConnectionSettings
) -> None:
    context = tmp_path / "app"
    context.mkdir()
    build_context(context)
    assert not (context / "tests").exists() and not (context / ".env").exists()
    python = await asyncio.to_thread(install_runtime, context, tmp_path / "venv")

    port = free_port()
    # The image's working directory holds no sources: the gateway runs from the package.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    gateway = await asyncio.create_subprocess_exec(
        str(python),
        "-m",
        "gateway",
        cwd=workdir,
        env={
            "PATH": os.environ["PATH"],
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "AUTH_API_KEYS": "image-test=alice",
            "REDIS_URL": real_connections.redis_url or "",
            "AMQP_URL": real_connections.amqp_url or "",
            "CHATSTREAM_NAMESPACE": real_connections.namespace,
            "LOG_FORMAT": "json",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    healthcheck = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["gateway"][
        "healthcheck"
    ]["test"]
    assert healthcheck[:3] == ["CMD", "python", "-c"]
    probe = healthcheck[3].replace(":8080/", f":{port}/")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while True:
            check = await asyncio.create_subprocess_exec(
                str(python), "-c", probe, stderr=subprocess.DEVNULL
            )
            if await check.wait() == 0:
                break
            assert gateway.returncode is None, "the gateway exited"
            assert loop.time() < deadline, "compose's healthcheck never passed"
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert (await response.json())["version"] == project_version()
            # The chat page's client modules come from clients/js/src, outside gateway/.
            for name in ("index.html", "app.js", "chatstream.js", "sse.js"):
                async with http.get(f"http://127.0.0.1:{port}/static/{name}") as response:
                    assert response.status == 200, name
    finally:
        gateway.terminate()
        await asyncio.wait_for(gateway.wait(), 15)
