"""Schema-driven fuzzing of the HTTP API: schemathesis generates valid and invalid
requests from our own OpenAPI schema; each goes through the real ASGI app in-process.

The bar: no 5xx for any input, every error in the one error shape, and every answer
conforms to the schema (status code, content type, body). Bounded and derandomized so
the unit suite stays fast and a failure reproduces; the example count is printed.
Sessions that a valid POST /session starts are deleted at once, and anything still
live is ended in teardown, so no agent outlives the test.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks

from app.voice.agent.host import get_host
from app.voice.models import EndReason, VoiceSession
from tests.unit.support import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

RAW_SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
SCHEMA = schemathesis.openapi.from_dict(RAW_SCHEMA)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Examples per operation: POST /session starts (and stops) a real agent when the body is valid.
MAX_EXAMPLES = {("POST", "/session"): 40}
DEFAULT_EXAMPLES = 45
# How many distinct cases each operation gets: the limit, or one for those without inputs.
EXPECTED_EXAMPLES = {
    "GET /token": DEFAULT_EXAMPLES,
    "POST /session": MAX_EXAMPLES[("POST", "/session")],
    "GET /session/{session_id}": DEFAULT_EXAMPLES,
    "DELETE /session/{session_id}": DEFAULT_EXAMPLES,
    "GET /transcripts": DEFAULT_EXAMPLES,
    "GET /transcripts/{session_id}": DEFAULT_EXAMPLES,
    "GET /transcripts/{session_id}/export.json": DEFAULT_EXAMPLES,
    "GET /transcripts/{session_id}/export.vtt": DEFAULT_EXAMPLES,
    "GET /healthz": 1,
    "GET /readyz": 1,
}
# Every answer must be one the schema declares, with that content type and body shape;
# invalid input must be refused (4xx) and valid input accepted.
RESPONSE_CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
]
RUNS: Counter[str] = Counter()


def name(operation: object) -> str:
    return f"{operation.method.upper()} {operation.path}"  # type: ignore[attr-defined]


@pytest.fixture(scope="module", autouse=True)
def report_example_count(request: pytest.FixtureRequest) -> object:
    started = time.monotonic()
    yield
    total = sum(RUNS.values())
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None and total:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nopenapi fuzz: {total} examples over {len(RUNS)} operations "
                f"in {time.monotonic() - started:.1f}s ({dict(RUNS)})"
            )


@pytest.fixture
async def no_agent_left_behind() -> AsyncIterator[None]:
    yield
    await get_host().shutdown()
    await VoiceSession.objects.exclude(status="ended").aupdate(status="ended", end_reason=EndReason.SHUTDOWN)
    assert not get_host().runs


def test_the_served_schema_is_the_one_fuzzed(client: APIClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served["Content-Type"].startswith("application/")
    assert set(served.json()["paths"]) == set(RAW_SCHEMA["paths"]) == {
        "/token", "/session", "/session/{session_id}", "/transcripts", "/transcripts/{session_id}",
        "/transcripts/{session_id}/export.json", "/transcripts/{session_id}/export.vtt",
        "/healthz", "/readyz",
    }
    assert sorted(name(operation) for operation in OPERATIONS) == sorted(EXPECTED_EXAMPLES)


async def send_and_check(api: httpx.AsyncClient, operation, case) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    response = await api.request(
        kwargs["method"],
        kwargs["url"],
        headers={k: v for k, v in kwargs["headers"].items() if k.lower() != "connection"},
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        content=kwargs.get("data"),
    )
    if response.status_code == 201 and operation.path == "/session":
        deleted = await api.delete(f"/session/{response.json()['session_id']}")
        assert deleted.status_code == 204
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if response.status_code >= 400:
        assert_error(response, response.status_code)
    try:
        case.validate_response(response, checks=RESPONSE_CHECKS)
    except FailureGroup as failures:
        raise AssertionError(f"{case.as_curl_command()}\n{failures}") from None


@pytest.mark.parametrize("operation", OPERATIONS, ids=name)
async def test_no_input_makes_the_api_fail(api: httpx.AsyncClient, no_agent_left_behind, operation) -> None:
    limit = MAX_EXAMPLES.get((operation.method.upper(), operation.path), DEFAULT_EXAMPLES)
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    started = time.monotonic()
    # Hypothesis cannot drive an async test body, so draw the cases first, then send each
    # through the app on this loop (the agent must run on the loop that serves the requests).
    drawn: list = []

    @settings(
        max_examples=limit,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def draw(case) -> None:
        drawn.append(case)

    draw()
    for case in drawn:
        RUNS[name(operation)] += 1
        await send_and_check(api, operation, case)

    elapsed = time.monotonic() - started
    print(f"\nfuzz {name(operation)}: {len(drawn)} examples in {elapsed:.1f}s", end="")
    assert len(drawn) == EXPECTED_EXAMPLES[name(operation)]
    assert not await VoiceSession.objects.exclude(status="ended").aexists()
