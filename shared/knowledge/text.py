"""Documents to plain text: Markdown and HTML are rendered and stripped by libraries
(markdown-it-py, Beautiful Soup over lxml), so chunks hold the words a reader sees, not the
markup. lxml, not Python's html.parser: the latter rescans an unclosed tag or comment to the
end of the input for each ``<``, which costs the square of the document.

Uploads come from users, so the work is linear in a document's size and bounded: a document
nested deeper than :data:`MAX_NESTING_DEPTH` or longer than :data:`MAX_DOCUMENT_CHARS` is
refused with :class:`DocumentRefused` rather than parsed.
"""

from __future__ import annotations

import re
import warnings
from pathlib import PurePath
from typing import Final, Literal

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning
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
# HTML elements nest at most this deep: deeper than real pages nest.
MAX_NESTING_DEPTH: Final = 100
# Far above any upload the gateway's body limit lets through; it bounds what ingest reads.
MAX_DOCUMENT_CHARS: Final = 5_000_000

_WRAPPERS: Final = ("html", "body")
# A document is read as HTML whatever it looks like (XML, a bare URL): that is no news to log.
for _category in (XMLParsedAsHTMLWarning, MarkupResemblesLocatorWarning):
    warnings.filterwarnings("ignore", category=_category)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")

_markdown = MarkdownIt("commonmark").enable("table")
# Markdown nests at most this deep (CommonMark's preset of markdown-it). markdown-it drops what
# lies deeper without a word, so such a document is refused instead; the limit also bounds the
# nested re-reading of link labels, which would otherwise cost the square of a paragraph.
MAX_MARKDOWN_NESTING: Final[int] = _markdown.options["maxNesting"]


class DocumentRefused(ValueError):
    """A document chatstream will not parse: nested too deeply, or too long."""


def format_of(path: PurePath) -> DocumentFormat | None:
    """The format a file is read as, or None for a file the ingester skips."""
    return SUFFIX_FORMATS.get(path.suffix.lower())


def to_text(content: str, document_format: DocumentFormat) -> str:
    """The readable text of a document: paragraphs separated by blank lines."""
    if len(content) > MAX_DOCUMENT_CHARS:
        raise DocumentRefused(f"longer than {MAX_DOCUMENT_CHARS} characters")
    if document_format == "text":
        return _tidy(content)
    html = _markdown_to_html(content) if document_format == "markdown" else content
    return html_to_text(html)


def _markdown_to_html(content: str) -> str:
    env: dict[str, object] = {}
    tokens = _markdown.parse(content, env)
    # An opening token at the last level means markdown-it may have cut what it holds.
    if any(t.nesting == 1 and t.level >= MAX_MARKDOWN_NESTING - 1 for t in tokens):
        raise DocumentRefused(f"Markdown nested deeper than {MAX_MARKDOWN_NESTING - 1} levels")
    html: str = _markdown.renderer.render(tokens, _markdown.options, env)
    return html


def html_to_text(html: str) -> str:
    """The text of each innermost block element of ``html``, as paragraphs."""
    soup = BeautifulSoup(html, "lxml")
    for element in soup(["script", "style", "head", "nav", "noscript"]):
        element.decompose()
    paragraphs: list[str] = []
    for block in _innermost_blocks(soup):
        # No separator: inline markup (<code>, <em>) sits inside words and punctuation.
        text = " ".join(block.get_text().split())
        if text:
            paragraphs.append(text)
    if not paragraphs:
        return _tidy(soup.get_text("\n"))
    return "\n\n".join(paragraphs)


def _innermost_blocks(soup: BeautifulSoup) -> list[Tag]:
    """The block elements that hold no other block, in document order (an outer <div> would
    repeat its paragraphs' text), found in one walk over the tree: asking each block whether
    its subtree holds a block would cost the depth squared."""
    depth: dict[int, int] = {id(soup): 0}
    # The nearest block each element sits in, or None at the top.
    enclosing: dict[int, Tag | None] = {id(soup): None}
    blocks: list[Tag] = []
    outer: set[int] = set()
    for element in soup.descendants:
        if not isinstance(element, Tag) or element.parent is None:
            continue
        parent = element.parent
        # lxml wraps every document in <html><body>: those are not the document's nesting.
        level = depth[id(parent)] + (element.name not in _WRAPPERS)
        if level > MAX_NESTING_DEPTH:
            raise DocumentRefused(f"HTML nested deeper than {MAX_NESTING_DEPTH} elements")
        depth[id(element)] = level
        enclosing[id(element)] = parent if _is_block(parent) else enclosing[id(parent)]
        if _is_block(element):
            blocks.append(element)
            block = enclosing[id(element)]
            if block is not None:
                outer.add(id(block))
    return [block for block in blocks if id(block) not in outer]


def _is_block(element: Tag) -> bool:
    return element.name in _BLOCKS and not isinstance(element, BeautifulSoup)


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()
