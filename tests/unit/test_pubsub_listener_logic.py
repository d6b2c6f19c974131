"""The pub/sub listener's logic without a connection: its liveness verdict, and the bookkeeping
of channels wanted, sent and confirmed."""

from __future__ import annotations

from shared.pubsub_listener import Liveness, liveness
from shared.pubsub_subscriptions import Subscriptions


def test_a_link_heard_from_since_the_last_check_is_alive() -> None:
    assert liveness(heard=True, pinged=False, late=False) is Liveness.ALIVE
    assert liveness(heard=True, pinged=True, late=False) is Liveness.ALIVE


def test_a_silent_link_is_pinged_then_dead_when_the_pong_is_as_late() -> None:
    assert liveness(heard=False, pinged=False, late=False) is Liveness.PING
    assert liveness(heard=False, pinged=True, late=False) is Liveness.DEAD


def test_a_check_that_ran_late_only_starts_over() -> None:
    assert liveness(heard=False, pinged=True, late=True) is Liveness.ALIVE


async def test_joins_queued_together_go_out_in_one_batch_and_wait_for_their_confirmation() -> None:
    book = Subscriptions()
    first, second = book.want("a"), book.want("b")
    assert first is not None and second is not None
    assert book.want("a") is first  # a second stream waits for the same SUBSCRIBE
    assert book.take_batch() == ([], ["a", "b"])
    assert not book.queued
    assert book.want("a") is first  # sent, not confirmed yet
    book.confirmed("a")
    assert first.result() is True and not second.done()
    assert book.want("a") is None  # confirmed: nothing to wait for


def subscribed(channel: str) -> Subscriptions:
    """Bookkeeping in which Redis has confirmed ``channel``."""
    book = Subscriptions()
    book.want(channel)
    book.take_batch()
    book.confirmed(channel)
    return book


async def test_a_leave_and_a_rejoin_in_one_turn_send_nothing() -> None:
    book = subscribed("a")
    book.drop("a")
    assert book.want("a") is None
    assert book.take_batch() == ([], [])


async def test_a_leave_sent_before_a_rejoin_goes_out_first() -> None:
    book = subscribed("a")
    book.drop("a")
    assert book.take_batch() == (["a"], [])
    rejoined = book.want("a")
    assert rejoined is not None and not rejoined.done()
    assert book.take_batch() == ([], ["a"])


async def test_a_join_left_before_it_went_out_is_not_taken() -> None:
    book = Subscriptions()
    joined = book.want("a")
    book.drop("a")
    assert book.take_batch() == ([], [])
    assert joined is not None and joined.result() is False


async def test_a_subscribe_that_could_not_be_sent_fails_its_waiters() -> None:
    book = Subscriptions()
    joined = book.want("a")
    book.take_batch()
    book.not_sent(["a"])
    assert joined is not None and joined.result() is False
    # Still wanted: a new wait sends it again.
    again = book.want("a")
    assert again is not None and again is not joined
    assert book.take_batch() == ([], ["a"])


async def test_a_lost_link_fails_every_wait_and_the_next_one_subscribes_what_is_wanted() -> None:
    book = Subscriptions()
    book.wanted.add("control")
    sent = book.want("a")
    book.take_batch()
    queued = book.want("b")
    book.drop("gone")
    book.link_lost()
    assert sent is not None and sent.result() is False
    assert queued is not None and queued.result() is False
    during_outage = book.want("c")
    assert sorted(book.resubscribe()) == ["a", "b", "c", "control"]
    assert not book.queued
    book.confirmed("c")
    assert during_outage is not None and during_outage.result() is True
    assert book.want("a") is None


async def test_confirmations_are_matched_oldest_first() -> None:
    book = Subscriptions()
    first = book.want("a")
    book.take_batch()
    book.drop("a")
    book.take_batch()
    second = book.want("a")
    book.take_batch()
    book.confirmed("a")
    assert first is not None and first.result() is True
    assert second is not None and not second.done()
    book.confirmed("a")
    assert second.result() is True
