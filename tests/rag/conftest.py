"""Fixtures of the RAG tests: a real Redis client on the test's namespace and a knowledge store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.knowledge import KnowledgeStore
from shared.names import Names
from shared.settings import ConnectionSettings

REPO = Path(__file__).resolve().parents[2]
DOCS_DIR = REPO / "docs"
QUESTIONS = Path(__file__).with_name("questions.json")


def labelled_questions() -> list[dict[str, Any]]:
    questions = json.loads(QUESTIONS.read_text())
    assert isinstance(questions, list)
    return questions


@pytest.fixture
async def redis(real_connections: ConnectionSettings) -> AsyncIterator[Redis]:
    assert real_connections.redis_url is not None
    client = Redis.from_url(real_connections.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def store(redis: Redis, namespace: str) -> KnowledgeStore:
    return KnowledgeStore(redis, Names(namespace))
