"""The pub/sub listener's logic without a connection: its liveness verdict, the bookkeeping
of channels wanted, sent and confirmed, and which reply answers which command."""

from __future__ import annotations

from redis.exceptions import ClusterDownError, MovedError

from shared.pubsub_listener import Liveness, liveness, worth_logging
from shared.pubsub_replies import PLAIN, PONG, SHARDED, InFlight, Sent, commands_for
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


async def test_a_forgotten_channel_is_neither_wanted_nor_sent_and_its_waiters_fail() -> None:
    book = Subscriptions()
    sent = book.want("a")
    book.take_batch()
    queued = book.want("b")
    book.forget(["a", "b"])
    assert sent is not None and sent.result() is False
    assert queued is not None and queued.result() is False
    assert book.wanted == set()
    assert book.take_batch() == ([], [])
    assert book.resubscribe() == []


def test_joins_on_a_cluster_are_one_command_per_slot_and_a_resubscription_reports_once() -> None:
    slots = {"a": 1, "b": 2, "c": 1}
    commands = commands_for(SHARDED, ["a", "b", "c"], slots.__getitem__, reviving=True)
    assert [(c.command, c.channels, c.slot) for c in commands] == [
        ("SSUBSCRIBE", ["a", "c"], 1),
        ("SSUBSCRIBE", ["b"], 2),
    ]
    assert [c.revival for c in commands] == [None, ["a", "b", "c"]]
    [leave] = commands_for(PLAIN, ["a", "b"], None, leave=True)
    assert (leave.command, leave.answer, leave.channels) == (
        "UNSUBSCRIBE",
        b"unsubscribe",
        ["a", "b"],
    )


def test_replies_answer_the_oldest_command_in_order_and_a_push_answers_nothing() -> None:
    in_flight = InFlight()
    join, ping = Sent("SSUBSCRIBE", b"ssubscribe", ["a", "b"], slot=1), Sent("PING", PONG, [])
    in_flight.sent(join)
    in_flight.sent(ping)
    # Redis dropped "c" unasked (its slot moved): no command in flight asked for it.
    assert in_flight.answer(b"sunsubscribe", "c") is None
    assert in_flight.answer(b"ssubscribe", "b") is None  # out of order: not the next answer
    assert in_flight.answer(b"ssubscribe", "a") is join and not join.done
    assert in_flight.answer(b"ssubscribe", "b") is join and join.done
    assert in_flight.answer(PONG, None) is ping and ping.done
    assert in_flight.answer(PONG, None) is None


def test_an_error_refuses_the_oldest_command_unless_it_names_another_slot() -> None:
    in_flight = InFlight()
    first = Sent("SSUBSCRIBE", b"ssubscribe", ["a"], slot=1)
    second = Sent("SSUBSCRIBE", b"ssubscribe", ["b"], slot=2)
    in_flight.sent(first)
    in_flight.sent(second)
    assert in_flight.refuse(MovedError("1 127.0.0.1:7001")) is first
    # The late MOVED of a leave whose reply a push was taken for: it belongs to no command.
    assert in_flight.refuse(MovedError("7 127.0.0.1:7001")) is None
    assert in_flight.refuse(ClusterDownError("CLUSTERDOWN the cluster is down")) is second
    assert in_flight.refuse(ClusterDownError("CLUSTERDOWN")) is None


def test_a_failure_that_lasts_is_logged_first_then_every_twentieth_time() -> None:
    logged = [failures for failures in range(1, 62) if worth_logging(failures)]
    assert logged == [1, 21, 41, 61]
