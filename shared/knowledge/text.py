"""Documents to plain text: Markdown is rendered by cmark-gfm and HTML is read by lxml, so
chunks hold the words a reader sees, not the markup. Both are C parsers built to stay linear on
hostile input: markdown-it-py rescanned up to its nesting limit for each unclosed ``[`` (two
seconds for one upload of brackets), Beautiful Soup spent a second building a tree of tiny
elements, and Python's html.parser rescans an unclosed tag to the end of the input.

Uploads come from users, so the work is linear in a document's size and bounded: a document
nested deeper than :data:`MAX_NESTING_DEPTH` or longer than :data:`MAX_DOCUMENT_CHARS` is
refused with :class:`DocumentRefused` rather than parsed.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Final, Literal

import cmarkgfm
from cmarkgfm.cmark import Options
from lxml import etree
from lxml.html import HtmlElement, HTMLParser

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
_BLOCKS: Final = frozenset(
    {
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
    }
)
# Elements nest at most this deep: deeper than real pages nest. Markdown is held to it too,
# through the HTML it renders to (a nested list is two elements a level).
MAX_NESTING_DEPTH: Final = 100
# Far above any upload the gateway's body limit lets through; it bounds what ingest reads.
MAX_DOCUMENT_CHARS: Final = 5_000_000

# lxml wraps every document in <html><body>: those are not the document's nesting.
_WRAPPERS: Final = frozenset({"html", "body"})
_HIDDEN: Final = ("script", "style", "head", "nav", "noscript")
# Raw HTML inside Markdown is kept: its words are the document's too, and it meets the same
# nesting bound as an HTML upload.
_MARKDOWN_OPTIONS: Final = Options.CMARK_OPT_UNSAFE
_MARKDOWN_EXTENSIONS: Final = ["table"]
_SPACES = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


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
    if document_format == "markdown":
        content = cmarkgfm.markdown_to_html_with_extensions(
            content, options=_MARKDOWN_OPTIONS, extensions=_MARKDOWN_EXTENSIONS
        )
    return html_to_text(content)


def html_to_text(html: str) -> str:
    """The text of each innermost block element of ``html``, as paragraphs."""
    parser = HTMLParser(remove_comments=True, remove_pis=True)
    root = etree.fromstring(html, parser)
    if root is None:  # nothing but whitespace
        return ""
    etree.strip_elements(root, *_HIDDEN, with_tail=False)
    paragraphs: list[str] = []
    for block in _innermost_blocks(root):
        # No separator: inline markup (<code>, <em>) sits inside words and punctuation.
        text = " ".join("".join(block.itertext()).split())
        if text:
            paragraphs.append(text)
    if not paragraphs:
        return _tidy("\n".join(root.itertext()))
    return "\n\n".join(paragraphs)


def _innermost_blocks(root: HtmlElement) -> list[HtmlElement]:
    """The block elements that hold no other block, in document order (an outer <div> would
    repeat its paragraphs' text), found in one walk over the tree: asking each block whether
    its subtree holds a block would cost the depth squared."""
    blocks: list[HtmlElement] = []
    # One entry per open element: whether a block has been seen inside it.
    holds_block: list[bool] = []
    depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        wrapper = element.tag in _WRAPPERS
        if event == "start":
            depth += not wrapper
            if depth > MAX_NESTING_DEPTH:
                raise DocumentRefused(f"nested deeper than {MAX_NESTING_DEPTH} elements")
            holds_block.append(False)
            continue
        depth -= not wrapper
        held = holds_block.pop()
        if element.tag in _BLOCKS:
            if not held:
                blocks.append(element)
            held = True
        if held and holds_block:
            holds_block[-1] = True
    return blocks


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()
