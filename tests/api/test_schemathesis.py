"""schemathesis against the OpenAPI document, on real gateway and worker processes and the real
Redis and RabbitMQ: no 5xx, and no response outside the document (status, content type,
headers, JSON schema).

schemathesis's pytest plugin does not run under this pytest (it reads a private attribute
pytest 9 removed), so each operation's cases come from its hypothesis strategy directly.
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
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
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
