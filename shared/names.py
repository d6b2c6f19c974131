"""Every name the services share: Redis keys and channels, AMQP exchanges and queues.

All of them hang off one namespace, so that a test (or a second deployment on the same servers)
isolates itself by choosing its own.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "chatstream"

# Redis key segments, joined as "<namespace>:<segment>:<id>:<suffix>".
JOB_KEY_SEGMENT = "job"
JOB_EVENTS_CHANNEL_SUFFIX = "events"
JOB_REPLAY_LOG_SUFFIX = "log"
GATEWAY_CONTROL_SEGMENT = "gateway"

# AMQP names, joined as "<namespace>.<suffix>".
JOBS_EXCHANGE_SUFFIX = "jobs"
JOBS_QUEUE_SUFFIX = "jobs"
JOBS_ROUTING_KEY = "job"
DEAD_LETTER_EXCHANGE_SUFFIX = "jobs.dlx"
DEAD_LETTER_QUEUE_SUFFIX = "jobs.dead"

# RabbitMQ redelivers a job this many times (a worker killed mid-job) before dead-lettering it.
JOB_DELIVERY_LIMIT = 3


@dataclass(frozen=True, slots=True)
class Names:
    """The names of one chatstream deployment, derived from its namespace."""

    namespace: str = DEFAULT_NAMESPACE

    def job_channel(self, job_id: str) -> str:
        """The pub/sub channel a job's events are published on."""
        return f"{self.namespace}:{JOB_KEY_SEGMENT}:{job_id}:{JOB_EVENTS_CHANNEL_SUFFIX}"

    def job_replay_log(self, job_id: str) -> str:
        """The capped Redis stream that keeps a job's events for replay."""
        return f"{self.namespace}:{JOB_KEY_SEGMENT}:{job_id}:{JOB_REPLAY_LOG_SUFFIX}"

    def gateway_control_channel(self, instance_id: str) -> str:
        """A channel each gateway process always listens on (keeps its pub/sub link alive)."""
        return f"{self.namespace}:{GATEWAY_CONTROL_SEGMENT}:{instance_id}"

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
