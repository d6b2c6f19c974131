"""The ``analyzing`` step: what kind of message this is, and the query to search with.

Rules, not a model: a greeting or thanks is chit-chat; a message that leans on what came before
(it opens with "and", "what about", or is short and points back with "it", "that", "them") is a
follow-up when there is a previous question, and its query carries that question's terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from worker.pipelines.rag.context import Turn
from worker.pipelines.rag.terms import content_words, words

GREETING: Final = "greeting"
CHITCHAT: Final = "chitchat"
NEW_QUESTION: Final = "new_question"
FOLLOW_UP: Final = "follow_up"

_GREETINGS = frozenset({"hi", "hello", "hey", "hallo", "morning", "evening", "greetings", "yo"})
_CHITCHAT = frozenset(
    {"thanks", "thank", "thx", "ok", "okay", "cool", "great", "bye", "goodbye", "nice", "cheers"}
)
_OPENERS = re.compile(r"^\s*(and|also|but|so|then|what about|how about|and what|and how)\b", re.I)
_POINTERS = frozenset({"it", "its", "that", "this", "those", "these", "them", "they", "there"})
# A follow-up names at most this many content words of its own.
_FOLLOW_UP_MAX_WORDS = 6


@dataclass(frozen=True, slots=True)
class Analysis:
    intent: str
    query: str
    rewritten: bool
    previous_question: str | None


def analyze(message: str, history: list[Turn]) -> Analysis:
    text = message.strip()
    tokens = words(text)
    previous = _previous_question(history)
    if tokens and set(tokens) <= _GREETINGS | _CHITCHAT | {"there", "all", "you", "very", "much"}:
        intent = GREETING if set(tokens) & _GREETINGS else CHITCHAT
        return Analysis(intent, text, False, previous)
    if previous is not None and _leans_on_history(text, tokens):
        topic = " ".join(content_words(previous))
        return Analysis(FOLLOW_UP, f"{text} ({topic})", True, previous)
    return Analysis(NEW_QUESTION, text, False, previous)


def _leans_on_history(text: str, tokens: list[str]) -> bool:
    if _OPENERS.match(text):
        return True
    return bool(set(tokens) & _POINTERS) and len(content_words(text)) <= _FOLLOW_UP_MAX_WORDS


def _previous_question(history: list[Turn]) -> str | None:
    for turn in reversed(history):
        if turn.role == "user" and content_words(turn.content):
            return turn.content
    return None
