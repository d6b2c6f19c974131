"""On a Redis Cluster, what one script or transaction touches together must lie in one hash
slot (docs/redis-cluster.md): these are the groups of keys chatstream writes together."""

from __future__ import annotations

import uuid

import pytest
from redis.crc import key_slot

from shared.ids import new_job_id, new_scoped_id
from shared.names import Names

TAGGED = Names("ns", hash_tags=True)


def slots(*keys: str) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


@pytest.mark.parametrize("session_id", ["42", "0b7e6a4e-8f0e-4b7c-9a3e-2f1d5c6b7a80"])
def test_a_session_its_messages_and_its_jobs_share_one_slot(session_id: str) -> None:
    job = new_job_id(session_id, in_session_slot=True)
    message = new_scoped_id(session_id)
    names = TAGGED
    assert (
        len(
            slots(
                names.session(session_id),
                names.session_messages(session_id),
                names.session_summary(session_id),
                names.message(message),
                names.message_content(message),
                names.job_replay_log(job),
                names.job_channel(job),
                names.job_meta(job),
                names.job_cancel_flag(job),
            )
        )
        == 1
    )


@pytest.mark.parametrize("user_id", ["alice", "", "}odd{", "{a}", "a}b"])
def test_a_users_keys_share_one_slot_whatever_the_id(user_id: str) -> None:
    names = TAGGED
    assert (
        len(
            slots(
                names.user_sessions(user_id),
                names.user_streams(user_id),
                names.user_rate(user_id, 1),
                names.user_rate(user_id, 2),
            )
        )
        == 1
    )


def test_a_collections_keys_share_one_slot() -> None:
    names = TAGGED
    keys = [
        names.project_owner("docs"),
        names.project_documents("docs"),
        names.project_chunks("docs"),
        names.project_index_version("docs"),
        names.project_memory("docs"),
    ]
    assert len(slots(*keys)) == 1


def test_sessions_spread_over_the_slots() -> None:
    sessions = [str(i) for i in range(2000)]
    assert len(slots(*(TAGGED.job_channel(new_scoped_id(s)) for s in sessions))) > 1800


def test_an_id_with_no_session_part_is_its_own_slot() -> None:
    """Anything a client sends as a job id names keys of one slot: a bogus id is a key nobody
    wrote, never a script across slots."""
    for job in ["abc", "", ".x", "a.b.c", "{x}.y", "}.z"]:
        assert len(slots(TAGGED.job_meta(job), TAGGED.job_replay_log(job))) == 1


def test_one_redis_keeps_the_names_it_always_had() -> None:
    names = Names("ns")
    assert names.session("42") == "ns:session:42"
    assert names.job_channel("42.ab") == "ns:job:42.ab:events"
    assert names.user_sessions("alice") == "ns:user:alice:sessions"
    assert names.cancel_channel == "ns:jobs:cancel"
    assert TAGGED.session("42") == "ns:session:{42}"
    assert TAGGED.job_channel("42.ab") == "ns:job:{42}.ab:events"


def test_one_redis_gives_jobs_plain_uuids() -> None:
    """Each event carries its job's id twice on the wire: where no slot needs the session's
    id in it, the id stays a UUID."""
    job = new_job_id("0b7e6a4e-8f0e-4b7c-9a3e-2f1d5c6b7a80", in_session_slot=False)
    assert str(uuid.UUID(job)) == job
