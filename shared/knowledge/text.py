"""Documents to plain text: Markdown and HTML are rendered and stripped by libraries
(markdown-it-py, Beautiful Soup), so chunks hold the words a reader sees, not the markup."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Final, Literal

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

DocumentFormat = Literal["markdown", "text", "html"]
FORMATS: Final = ("markdown", "text", "html")

# File suffixes the ingester reads, and the format each one is in.
SUFFIX_FORMATS: Final[dict[str, DocumentFormat]] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
}

# Block elements end a paragraph; the text of each becomes its own paragraph.
_BLOCKS: Final = (
    "p",
    "li",
    "pre",
    "blockquote",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "dt",
    "dd",
    "div",
    "section",
    "article",
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")

_markdown = MarkdownIt("commonmark").enable("table")


def format_of(path: PurePath) -> DocumentFormat | None:
    """The format a file is read as, or None for a file the ingester skips."""
    return SUFFIX_FORMATS.get(path.suffix.lower())


def to_text(content: str, document_format: DocumentFormat) -> str:
    """The readable text of a document: paragraphs separated by blank lines."""
    if document_format == "text":
        return _tidy(content)
    html = _markdown.render(content) if document_format == "markdown" else content
    return html_to_text(html)


def html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for element in soup(["script", "style", "head", "nav", "noscript"]):
        element.decompose()
    paragraphs: list[str] = []
    for block in soup.find_all(_BLOCKS):
        # Only the innermost blocks: an outer <div> would repeat its paragraphs' text.
        if block.find(_BLOCKS) is not None:
            continue
        # No separator: inline markup (<code>, <em>) sits inside words and punctuation.
        text = " ".join(block.get_text().split())
        if text:
            paragraphs.append(text)
    if not paragraphs:
        return _tidy(soup.get_text("\n"))
    return "\n\n".join(paragraphs)


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()
