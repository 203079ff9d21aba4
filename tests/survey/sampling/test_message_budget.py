"""A plan is refused when it is applied if an invitation or reminder it would send cannot fit
two SMS parts with the agency's name and the service's real link, never cut later."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.models import SamplingPlan
from tests.survey.admin_builders import (
    EXAMPLE_PLAN,
    add_tax_agency,
    run,
    staff_token,
    use_test_database,
    write,
)

YAML = {"Content-Type": "application/yaml"}
BASE_40 = "https://nazarsanji.example-agency.gov.ir"
BASE_50 = "https://nazarsanji-citizens.example-agency.gov.ir/x"
BASE_90 = "https://" + "n" * 70 + ".example.ir/s"  # 91 characters


@pytest.fixture
def serve(migrated_settings: Settings, clock) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """`serve(base_url)`: an HTTP client of the app with that public base URL."""
    contexts: list[AppContext] = []

    def client_for(base_url: str) -> TestClient:
        settings = replace(migrated_settings, public_base_url=base_url)
        context = AppContext.build(settings, clock=clock)
        contexts.append(context)
        return TestClient(
            create_app(settings, context=context), base_url="https://testserver.local"
        )

    yield client_for
    for context in contexts:
        context.close()


def _plans(context: AppContext) -> list[SamplingPlan]:
    with context.sessions() as session:
        return list(session.scalars(sa.select(SamplingPlan)))


def test_a_plan_whose_invitations_cannot_fit_the_real_link_is_refused(
    serve,
    context: AppContext,  # type: ignore[no-untyped-def]
) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "statistician"), **YAML}
    with serve(BASE_90) as client:
        for path in ("/api/v1/plans/validate", "/api/v1/plans"):
            response = client.post(path, content=EXAMPLE_PLAN.encode(), headers=headers)
            assert response.status_code == 422, response.text
            body = response.json()
            assert body["error"] == "<request body>: the sampling plan has 1 problem"
            [problem] = body["problems"]
            # The link-mode choice is at fault, named by agency, service and questionnaire; the
            # SMS dialogue (no link) fits.
            assert problem["field"] == "questionnaires[0]"
            message = problem["message"]
            assert message.startswith(
                "agency TAX (service TAX-01), questionnaire core-transaction version 1 in mode "
                "sms_link: SMS texts do not fit two parts with the link "
                f"{BASE_90}/s/<token> ({len(BASE_90) + 19} characters)"
            )
            assert "the fa invite for sms_link needs 3 SMS parts" in message
            assert "survey agencies sms-name TAX" in message
    assert _plans(context) == []  # nothing activated
    with serve(BASE_40) as client:
        response = client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=headers)
        assert response.status_code == 201, response.text


def test_the_check_uses_the_agency_s_own_sms_name(
    serve,
    context: AppContext,  # type: ignore[no-untyped-def]
) -> None:
    """With a 50-character base URL a 20-character SMS name leaves no room for the reminder;
    a short one does."""
    add_tax_agency(context)
    admin = staff_token(context, "admin")
    headers = {**admin, **YAML}
    with serve(BASE_50) as client:
        name = {"sms_name_fa": "سازمان امور مالیاتی ک"[:20]}
        assert client.patch("/api/v1/agencies/TAX", json=name, headers=admin).status_code == 200
        response = client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=headers)
        assert response.status_code == 422
        assert "the fa reminder for sms_link needs 3 SMS parts" in response.text
        assert "'سازمان امور مالیاتی'" in response.text  # the name it was tried with
        name = {"sms_name_fa": "مالیات"}
        assert client.patch("/api/v1/agencies/TAX", json=name, headers=admin).status_code == 200
        response = client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=headers)
        assert response.status_code == 201, response.text
    assert len(_plans(context)) == 1


def test_plans_apply_on_the_console_refuses_it_too(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    context: AppContext,
    tmp_path: Path,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    add_tax_agency(context)
    plan = write(tmp_path / "plan.yaml", EXAMPLE_PLAN)
    monkeypatch.setenv("SURVEY_PUBLIC_BASE_URL", BASE_90)
    for action in ("validate", "apply"):
        code, _, err = run(capsys, "plans", action, str(plan))
        assert code == 2
        assert f"{plan}: questionnaires[0]: agency TAX (service TAX-01)" in err
    assert _plans(context) == []
    monkeypatch.setenv("SURVEY_PUBLIC_BASE_URL", BASE_40)
    code, out, _ = run(capsys, "plans", "apply", str(plan))
    assert code == 0 and "activated as version 1" in out
