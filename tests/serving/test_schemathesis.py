"""Property-based API tests of both services with schemathesis: every operation of each live
slot's OpenAPI spec, with generated requests that fit the schema and requests that do not,
answers below 500.

Schemathesis' pytest plugin does not run on pytest 9 (it writes `Function._nodeid`, which pytest
9 removed), so each operation's strategy (`APIOperation.as_strategy`) drives Hypothesis here.
BentoML labels its spec OpenAPI 3.0 but fills it with pydantic's JSON Schema 2020-12 (a numeric
`exclusiveMinimum`, `default: null` on a typed field), which OpenAPI 3.1 allows and 3.0 forbids;
schemathesis rejects it as 3.0, so the spec is read as the 3.1 it is.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = 25  # per operation and mode


def _as_openapi_31(spec: dict) -> dict:
    return {**spec, "openapi": "3.1.0"}


def _live_slot(cluster, model: str) -> str:
    from serving.slots import LocalSlots

    slots = [s for s in LocalSlots(cluster).all() if s.model == model]
    if not slots:
        pytest.fail(f"no live {model} slot")
    return slots[0].url


@pytest.mark.parametrize("model", ["recommender", "pricing"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_5xx(cluster, api_key, model, mode):
    import httpx

    url = _live_slot(cluster, model)
    spec = httpx.get(f"{url}/docs.json", timeout=10).raise_for_status().json()
    schema = schemathesis.openapi.from_dict(_as_openapi_31(spec))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path in ("/recommend", "/price") for op in operations)
    seen: list[str] = []

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_below_500(case) -> None:
            response = case.call(base_url=url, headers={"X-API-Key": api_key}, timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
            )

        try:
            answers_below_500()
        except Unsatisfiable:  # nothing in it can be made invalid (a GET without parameters)
            assert mode is GenerationMode.NEGATIVE, f"{operation.path}: no valid request?"
            continue
        seen.append(f"{operation.method.upper()} {operation.path}")
    # the scoring operations were exercised in both modes (only bodiless GETs have nothing to
    # break)
    assert {"POST /recommend", "POST /price"} & set(seen), seen
