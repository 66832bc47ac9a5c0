"""A bounded schemathesis run over every operation of /openapi.json: no answer is a 5xx.

Each generated call is made as an admin of the personas' repositories and as the service, so
calls get past authentication and reach the handlers (notification calls for the one,
directory and event calls for the other). Hypothesis drives the generation with a fixed seed.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 25
PERSONAS = ("owner", "service")


def _check_operation(api, operation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    def no_server_error(case):
        for persona in PERSONAS:
            response = case.call(headers=api.headers(persona))
            assert response.status_code < 500, (persona, case.method, case.formatted_path,
                                                 response.text[:500])

    no_server_error()


def test_no_operation_answers_a_server_error(api):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]

    assert len(operations) > 20  # the whole API, not an empty schema
    for operation in operations:
        _check_operation(api, operation)
