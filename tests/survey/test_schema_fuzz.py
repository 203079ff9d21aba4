"""Schemathesis against the app's own OpenAPI schema (`/schema/openapi.json`): for every
operation, generated requests (as an admin, on a seeded database) get no 5xx, and every
answer matches what the schema promises (status code, content type, body schema).

Deterministic: Hypothesis is derandomized and the examples per operation are capped, so CI
sees the same requests on every run (well under a minute in all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from litestar import Litestar

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from tests.survey.builders import add_agency, add_plan, add_staff
from tests.survey.sms_builders import SmsWorld

# CI's figure; `SURVEY_FUZZ_EXAMPLES=200 pytest tests/survey/test_schema_fuzz.py` digs deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("SURVEY_FUZZ_EXAMPLES", "15"))

_AUTH: dict[str, str] = {}


@pytest.fixture
def api_schema(migrated_settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    context = AppContext.build(migrated_settings)
    SmsWorld(context)  # questionnaires, a plan, agency REG
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context, version=2)
    _AUTH["Authorization"] = f"Bearer {add_staff(context, 'fuzz-admin', 'admin')}"
    app: Litestar = create_app(migrated_settings, context=context)
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    context.close()


CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def test_the_api_matches_its_schema_and_never_fails(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10  # the schema really lists the API

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=dict(_AUTH), checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect all, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
