"""Every name the services share: Redis keys and channels, AMQP exchanges and queues.

All of them hang off one namespace, so that a test (or a second deployment on the same servers)
isolates itself by choosing its own.

On a Redis Cluster (``hash_tags``) each Redis name carries a hash tag, so that what one script or
transaction touches together lies in one slot (docs/redis-cluster.md): a session's keys, its
messages' and its jobs' are tagged with the session's id, which server-made message ids, and
job ids on a cluster, start with (:mod:`shared.ids`); a user's keys with the user's id; a
collection's with its name. One Redis keeps the names untagged, as they always were, so that an
upgrade finds every key where it left it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.ids import SCOPE_SEPARATOR

DEFAULT_NAMESPACE = "chatstream"

# Redis key segments, joined as "<namespace>:<segment>:<id>:<suffix>".
JOB_KEY_SEGMENT = "job"
JOB_EVENTS_CHANNEL_SUFFIX = "events"
JOB_REPLAY_LOG_SUFFIX = "log"
GATEWAY_CONTROL_SEGMENT = "gateway"
SESSION_KEY_SEGMENT = "session"
MESSAGE_KEY_SEGMENT = "message"
USER_KEY_SEGMENT = "user"

# AMQP names, joined as "<namespace>.<suffix>".
JOBS_EXCHANGE_SUFFIX = "jobs"
JOBS_QUEUE_SUFFIX = "jobs"
JOBS_ROUTING_KEY = "job"
DEAD_LETTER_EXCHANGE_SUFFIX = "jobs.dlx"
DEAD_LETTER_QUEUE_SUFFIX = "jobs.dead"

# RabbitMQ redelivers a job this many times (a worker killed mid-job) before dead-lettering it.
JOB_DELIVERY_LIMIT = 3

# Knowledge collections ("projects"): "<namespace>:project:<name>:<suffix>".
PROJECT_KEY_SEGMENT = "project"
PROJECT_OWNER_SUFFIX = "owner"
PROJECT_DOCUMENTS_SUFFIX = "documents"
PROJECT_CHUNKS_SUFFIX = "chunks"
PROJECT_INDEX_VERSION_SUFFIX = "index-version"
PROJECT_MEMORY_SUFFIX = "memory"
SESSION_SUMMARY_SUFFIX = "summary"


def hash_tag(value: str) -> str:
    """``value`` as a Redis Cluster hash tag: ``{value}``, or, when braces in it would end the
    tag early or leave it empty (a user id is anything an operator chose), a tag of its hash."""
    if value and "{" not in value and "}" not in value:
        return f"{{{value}}}"
    return f"{{h{hashlib.sha1(value.encode()).hexdigest()[:16]}}}"


def scoped_hash_tag(scoped_id: str) -> str:
    """A job's or message's id with its session's part as the hash tag: ``{session}.rest``; an
    id with no session part (older ones, or anything a client sends) is its own tag."""
    scope, separator, rest = scoped_id.rpartition(SCOPE_SEPARATOR)
    if not scope:
        return hash_tag(scoped_id)
    return f"{hash_tag(scope)}{separator}{rest}"


@dataclass(frozen=True, slots=True)
class Names:
    """The names of one chatstream deployment, derived from its namespace; with ``hash_tags``,
    laid out for a Redis Cluster."""

    namespace: str = DEFAULT_NAMESPACE
    hash_tags: bool = False

    def _job(self, job_id: str) -> str:
        tagged = scoped_hash_tag(job_id) if self.hash_tags else job_id
        return f"{self.namespace}:{JOB_KEY_SEGMENT}:{tagged}"

    def _session(self, session_id: str) -> str:
        tagged = hash_tag(session_id) if self.hash_tags else session_id
        return f"{self.namespace}:{SESSION_KEY_SEGMENT}:{tagged}"

    def _message(self, message_id: str) -> str:
        tagged = scoped_hash_tag(message_id) if self.hash_tags else message_id
        return f"{self.namespace}:{MESSAGE_KEY_SEGMENT}:{tagged}"

    def _user(self, user_id: str) -> str:
        tagged = hash_tag(user_id) if self.hash_tags else user_id
        return f"{self.namespace}:{USER_KEY_SEGMENT}:{tagged}"

    def job_channel(self, job_id: str) -> str:
        """The pub/sub channel a job's events are published on."""
        return f"{self._job(job_id)}:{JOB_EVENTS_CHANNEL_SUFFIX}"

    def job_replay_log(self, job_id: str) -> str:
        """The capped Redis stream that keeps a job's events for replay."""
        return f"{self._job(job_id)}:{JOB_REPLAY_LOG_SUFFIX}"

    def gateway_control_channel(self, instance_id: str) -> str:
        """A channel each gateway process always listens on (keeps its pub/sub link alive)."""
        return f"{self.namespace}:{GATEWAY_CONTROL_SEGMENT}:{instance_id}"

    def job_meta(self, job_id: str) -> str:
        """A hash of who owns a job and where it stands (for resume and cancel)."""
        return f"{self._job(job_id)}:meta"

    def job_cancel_flag(self, job_id: str) -> str:
        """Set when a job is cancelled, so a worker that has not started it yet sees it too."""
        return f"{self._job(job_id)}:cancel"

    @property
    def cancel_channel(self) -> str:
        """Every worker listens here for the ids of jobs to stop."""
        return f"{self.namespace}:jobs:{hash_tag('cancel') if self.hash_tags else 'cancel'}"

    def session(self, session_id: str) -> str:
        return self._session(session_id)

    def session_messages(self, session_id: str) -> str:
        """A list of the session's message ids, oldest first."""
        return f"{self._session(session_id)}:messages"

    def user_sessions(self, user_id: str) -> str:
        """A sorted set of the user's session ids, scored by last update (epoch ms)."""
        return f"{self._user(user_id)}:sessions"

    def user_streams(self, user_id: str) -> str:
        """A sorted set of the user's jobs in flight (open streams, waiting completions), scored
        by when each lease runs out."""
        return f"{self._user(user_id)}:streams"

    def user_rate(self, user_id: str, window: int) -> str:
        """A counter of the user's requests in one rate-limit window."""
        return f"{self._user(user_id)}:rate:{window}"

    def message(self, message_id: str) -> str:
        return self._message(message_id)

    def message_content(self, message_id: str) -> str:
        """A string of the message's text; a streaming answer grows here token by token."""
        return f"{self._message(message_id)}:content"

    @property
    def key_pattern(self) -> str:
        """A SCAN pattern matching every Redis key of this namespace."""
        return f"{self.namespace}:*"

    @property
    def jobs_exchange(self) -> str:
        return f"{self.namespace}.{JOBS_EXCHANGE_SUFFIX}"

    @property
    def jobs_queue(self) -> str:
        return f"{self.namespace}.{JOBS_QUEUE_SUFFIX}"

    @property
    def jobs_routing_key(self) -> str:
        return JOBS_ROUTING_KEY

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.{DEAD_LETTER_EXCHANGE_SUFFIX}"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.namespace}.{DEAD_LETTER_QUEUE_SUFFIX}"

    def _project_key(self, project: str, suffix: str) -> str:
        tagged = hash_tag(project) if self.hash_tags else project
        return f"{self.namespace}:{PROJECT_KEY_SEGMENT}:{tagged}:{suffix}"

    def project_owner(self, project: str) -> str:
        """The user id that created a knowledge collection (a string key)."""
        return self._project_key(project, PROJECT_OWNER_SUFFIX)

    def project_documents(self, project: str) -> str:
        """A hash of a collection's documents: document id to its JSON metadata."""
        return self._project_key(project, PROJECT_DOCUMENTS_SUFFIX)

    def project_chunks(self, project: str) -> str:
        """A hash of a collection's chunks: chunk id to its JSON text and metadata."""
        return self._project_key(project, PROJECT_CHUNKS_SUFFIX)

    def project_index_version(self, project: str) -> str:
        """A counter bumped on every change, so each worker knows when to reload its index."""
        return self._project_key(project, PROJECT_INDEX_VERSION_SUFFIX)

    def project_memory(self, project: str) -> str:
        """A capped list of what was asked and answered in a collection, newest first."""
        return self._project_key(project, PROJECT_MEMORY_SUFFIX)

    def session_summary(self, session_id: str) -> str:
        """A session's running summary, written by the RAG pipeline's memory step."""
        return f"{self._session(session_id)}:{SESSION_SUMMARY_SUFFIX}"
