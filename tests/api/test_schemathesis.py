"""schemathesis against the OpenAPI document, on real gateway and worker processes and the real
Redis and RabbitMQ: no 5xx, and no response outside the document (status, content type,
headers, JSON schema). Each operation alone, then in its stateful mode: sequences of calls that
follow the document's links (a session created, then read, renamed, streamed into, deleted; a
stream's job given a ticket, attached, cancelled), so that calls reach real resources instead of
404s, and a deleted resource is checked to be gone.

schemathesis's pytest plugin does not run under this pytest (it reads a private attribute
pytest 9 removed), so each operation's cases come from its hypothesis strategy directly, and
the state machine runs through its own ``run``.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from tests.conftest import AUTH

pytestmark = pytest.mark.process

# Few examples per operation and mode: the run checks the document's truth, and stays well
# under a minute on a shared 2-core machine.
EXAMPLES_PER_OPERATION = 6
CALL_TIMEOUT_S = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# A few short scenarios: enough to walk every link a few times, well under a minute.
STATEFUL_SCENARIOS = 20
STATEFUL_STEPS = 6
# Links only pay off when the resource they lead to is really there and really goes.
STATEFUL_CHECKS = [*CHECKS, ensure_resource_availability, use_after_free]


def check_operation(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        # The same cases on every run: a gate the whole team shares must not flip by chance.
        # A schema change brings new cases.
        derandomize=True,
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=CALL_TIMEOUT_S)

    run()


async def test_the_api_answers_as_its_document_says(processes: Any) -> None:
    # Tokens without delay, so that a generated chat turn's stream ends at once.
    await processes.worker(ECHO_TOKEN_DELAY_MS="0")
    gateway = await processes.gateway()
    schema = schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                check_operation(operation, mode)
            except Unsatisfiable:
                # An operation that takes nothing has no invalid input to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as e:
                failures.append(f"{operation.label} ({mode.value}): {e}")
    assert not failures, "\n\n".join(failures)


async def test_linked_operations_answer_as_the_document_says(processes: Any) -> None:
    await processes.worker(ECHO_TOKEN_DELAY_MS="0")
    gateway = await processes.gateway()
    schema = schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json")
    # The document's own links (sessions, jobs, tickets, documents), at the least.
    assert schema.statistic.transitions.total >= 40, schema.statistic.transitions

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH, "timeout": CALL_TIMEOUT_S}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                checks=STATEFUL_CHECKS,
                headers=AUTH,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Scenarios.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
    )
