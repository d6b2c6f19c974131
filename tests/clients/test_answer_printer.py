"""The terminal client prints an answer once, whatever the stream did: pure logic, no server."""

from __future__ import annotations

import io

from cli.chat import AnswerPrinter, ProgressLine


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
