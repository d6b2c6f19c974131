"""One version, pyproject.toml's: ``chatstream --version`` prints it and ``/healthz`` reports
it, read back from the installed package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.chat import Client

ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


async def test_healthz_reports_the_project_version(gateway: Client) -> None:
    response = await gateway.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "version": project_version()}


def test_cli_prints_the_project_version() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"chatstream {project_version()}"


def test_changelog_has_an_entry_for_the_project_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{project_version()}] - " in changelog
