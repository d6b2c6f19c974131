"""Which reply on a pub/sub connection answers which command, without any I/O.

Redis answers a connection's commands in the order they were sent: a join or a leave once per
channel, in the order of its channels, and a PING once. An error reply answers a whole command
instead (``MOVED``, ``CROSSSLOT``, ``CLUSTERDOWN`` on a cluster). Keeping the commands sent and
not yet answered, oldest first, tells which command an error refuses, so that only its channels
fail, and it tells a reply apart from what Redis sends unasked: messages, and on a cluster the
``sunsubscribe`` it pushes when a channel's slot moves to another node.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import ResponseError

PONG = b"pong"


@dataclass(frozen=True, slots=True)
class Verbs:
    """A kind of channel: the commands that join and leave one, and the kinds of reply."""

    join: str
    leave: str
    joined: bytes
    left: bytes
    message: bytes


PLAIN = Verbs("SUBSCRIBE", "UNSUBSCRIBE", b"subscribe", b"unsubscribe", b"message")
SHARDED = Verbs("SSUBSCRIBE", "SUNSUBSCRIBE", b"ssubscribe", b"sunsubscribe", b"smessage")


@dataclass(slots=True, eq=False)
class Sent:
    """A command on the wire and the replies it still waits for."""

    # The command's name, and the kind of reply that answers it (``b"pong"`` for a PING).
    command: str
    answer: bytes
    channels: list[str]
    # On a cluster: the slot every one of its channels hashes to.
    slot: int | None = None
    # Part of a resubscription after an outage: its channels may have missed messages.
    reviving: bool = False
    # On a resubscription's last command only: every channel of the resubscription, reported
    # live once Redis has answered the whole of it.
    revival: list[str] | None = None
    answered: int = 0

    @property
    def done(self) -> bool:
        return self.answered >= max(1, len(self.channels))


class InFlight:
    def __init__(self) -> None:
        self._sent: deque[Sent] = deque()

    def clear(self) -> None:
        """A new connection: nothing is in flight on it."""
        self._sent.clear()

    def sent(self, command: Sent) -> None:
        self._sent.append(command)

    def answer(self, kind: bytes, channel: str | None) -> Sent | None:
        """The command that the reply ``kind`` (for ``channel``) answers, counted as answered
        once more; None when the reply answers nothing in flight (Redis sent it unasked)."""
        if not self._sent:
            return None
        oldest = self._sent[0]
        if oldest.answer != kind:
            return None
        if oldest.channels and oldest.channels[oldest.answered] != channel:
            return None
        oldest.answered += 1
        if oldest.done:
            self._sent.popleft()
        return oldest

    def refuse(self, error: ResponseError) -> Sent | None:
        """The command ``error`` refuses, no longer in flight; None when nothing is in flight,
        or when the error names a slot other than the oldest command's.

        That happens when Redis pushed ``sunsubscribe`` for a channel as its slot moved while a
        leave of that channel was in flight: the push was taken for the leave's reply, and the
        leave's own reply, a ``MOVED``, comes after it and belongs to no command left."""
        if not self._sent:
            return None
        slot = getattr(error, "slot_id", None)
        oldest = self._sent[0]
        if slot is not None and oldest.slot is not None and int(slot) != oldest.slot:
            return None
        return self._sent.popleft()


def commands_for(
    verbs: Verbs,
    channels: list[str],
    slot_of: Callable[[str], int] | None,
    *,
    leave: bool = False,
    reviving: bool = False,
) -> list[Sent]:
    """The joins (or leaves) of ``channels``: one command, or with ``slot_of`` (a cluster) one
    per slot, since Redis refuses a command whose channels span slots (CROSSSLOT)."""
    verb, answer = (verbs.leave, verbs.left) if leave else (verbs.join, verbs.joined)
    if slot_of is None:
        commands = [Sent(verb, answer, channels, reviving=reviving)]
    else:
        by_slot: defaultdict[int, list[str]] = defaultdict(list)
        for channel in channels:
            by_slot[slot_of(channel)].append(channel)
        commands = [
            Sent(verb, answer, group, slot=slot, reviving=reviving)
            for slot, group in by_slot.items()
        ]
    if reviving:
        commands[-1].revival = channels
    return commands
