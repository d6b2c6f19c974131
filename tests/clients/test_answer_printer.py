"""The terminal client prints an answer once, whatever the stream did, then its sources: pure
logic, no server."""

from __future__ import annotations

import io

from chatstream_client import Citation

from cli.chat import AnswerPrinter, ProgressLine, print_sources


def printer() -> tuple[AnswerPrinter, io.StringIO]:
    out = io.StringIO()
    return AnswerPrinter(out, ProgressLine(io.StringIO())), out


def test_tokens_then_end_print_the_answer_once() -> None:
    answer, out = printer()
    for token in ["one", " two", " three"]:
        answer.token(token)
    answer.finish("one two three")
    assert out.getvalue() == "one two three\n"


def test_after_a_reset_only_the_missing_part_is_printed() -> None:
    answer, out = printer()
    answer.token("one")
    answer.reset()
    # The fresh copy's tokens would repeat what is on screen: they are held back.
    answer.token("one")
    answer.token(" two")
    answer.finish("one two")
    assert out.getvalue() == "one two\n"


def test_an_answer_that_changed_under_a_reset_is_printed_whole_on_a_new_line() -> None:
    answer, out = printer()
    answer.token("draft")
    answer.reset()
    answer.finish("final answer")
    assert out.getvalue() == "draft\nfinal answer\n"


def test_sources_list_each_marker_with_its_document_and_quotes() -> None:
    out = io.StringIO()
    print_sources(
        [
            Citation(1, "docs", "d1", "rag.md", "d1:0", 2.0, ("Workers agree.", "They do.")),
            # A model that wrote in its own words quotes nothing: the document alone.
            Citation(2, "docs", "d2", "deploy.md", "d2:3", 1.0, ()),
        ],
        out,
    )
    assert out.getvalue() == (
        '\nSources:\n[1] rag.md\n    "Workers agree."\n    "They do."\n[2] deploy.md\n'
    )


def test_an_answer_without_citations_prints_no_sources() -> None:
    out = io.StringIO()
    print_sources([], out)
    assert out.getvalue() == ""
