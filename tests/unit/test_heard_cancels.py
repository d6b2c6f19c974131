"""The cancel listener's memory: which jobs it answers for, and what it answers."""

from __future__ import annotations

from worker.heard_cancels import HeardCancels

MARGIN_MS = 100


def test_it_covers_nothing_before_the_listener_is_live() -> None:
    heard = HeardCancels(MARGIN_MS)
    assert not heard.covers(10**15)


def test_it_covers_only_jobs_created_past_the_margin_after_it_went_live() -> None:
    heard = HeardCancels(MARGIN_MS)
    heard.listening(1_000)
    assert not heard.covers(900)
    assert not heard.covers(1_000 + MARGIN_MS)
    assert heard.covers(1_001 + MARGIN_MS)


def test_a_job_older_than_any_subscription_is_never_covered() -> None:
    # A job from a gateway that left created_at_ms out decodes with 0.
    heard = HeardCancels(MARGIN_MS)
    heard.listening(0)
    assert not heard.covers(0)


def test_a_heard_cancel_is_taken_once() -> None:
    heard = HeardCancels(MARGIN_MS)
    heard.listening(1_000)
    heard.heard("job-1", 2_000)
    assert not heard.take("job-2")
    assert heard.take("job-1")
    assert not heard.take("job-1")


def test_a_lost_subscription_covers_nothing_until_it_is_live_again() -> None:
    heard = HeardCancels(MARGIN_MS)
    heard.listening(1_000)
    heard.deaf()
    assert not heard.covers(5_000)
    heard.listening(6_000)
    assert not heard.covers(5_000)
    assert heard.covers(6_001 + MARGIN_MS)


def test_what_was_heard_before_an_outage_is_still_answered() -> None:
    heard = HeardCancels(MARGIN_MS)
    heard.listening(1_000)
    heard.heard("job-1", 2_000)
    heard.deaf()
    heard.listening(3_000)
    assert heard.take("job-1")


def test_forgetting_the_oldest_cancel_narrows_what_is_covered() -> None:
    heard = HeardCancels(MARGIN_MS, capacity=2)
    heard.listening(1_000)
    heard.heard("job-1", 2_000)
    heard.heard("job-2", 3_000)
    assert heard.covers(1_500 + MARGIN_MS)
    heard.heard("job-3", 4_000)  # job-1, heard at 2,000, is forgotten
    assert not heard.take("job-1")
    # A job created before 2,000 may have been job-1: its cancel is no longer remembered.
    assert not heard.covers(1_500 + MARGIN_MS)
    assert heard.covers(2_001 + MARGIN_MS)
    assert heard.take("job-2") and heard.take("job-3")


def test_a_cancel_heard_again_counts_from_the_last_time() -> None:
    heard = HeardCancels(MARGIN_MS, capacity=2)
    heard.listening(1_000)
    heard.heard("job-1", 2_000)
    heard.heard("job-2", 3_000)
    heard.heard("job-1", 4_000)  # pressed stop twice: job-2 is now the oldest
    heard.heard("job-3", 5_000)
    assert heard.take("job-1") and not heard.take("job-2")
    assert not heard.covers(3_000 + MARGIN_MS)
