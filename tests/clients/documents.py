"""A small knowledge collection for the client tests that ask a project: one document whose
sentences an extractive answer quotes word for word."""

from __future__ import annotations

import aiohttp

from tests.conftest import AUTH

RULES = (
    "# Release rules\n\nThe deploy freeze starts two days before a release. "
    "Hotfixes during the freeze need two approvals."
)
RULES_QUESTION = "When does the deploy freeze start?"


async def add_rules(base_url: str, project: str = "rules") -> None:
    """Give alice's ``project`` the document ``release.md``."""
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.post(
            f"{base_url}/api/v1/projects/{project}/documents",
            json={"name": "release.md", "content": RULES},
        ) as response,
    ):
        assert response.status == 201, await response.text()
