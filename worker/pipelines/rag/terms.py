"""Words as the retriever sees them: lower-cased, stop words dropped, stemmed. The analysis
and the extractive generator compare texts with the same rules as BM25 does."""

from __future__ import annotations

import re
from functools import cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"[a-z0-9][a-z0-9_'-]*")
_STOPWORDS = frozenset(STOPWORDS_EN)


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning, in order."""
    return [w for w in words(text) if w not in _STOPWORDS]


def terms(text: str) -> set[str]:
    """The stemmed content words of ``text``."""
    found: list[str] = _stemmer().stemWords(content_words(text))
    return set(found)
