"""The ingestion overview page at `/ingestion`: Persian and right-to-left by default,
English on request, aggregate counts only."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.ingestion.ingest import ingest_transactions
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.sampling import plans
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token

PHONE = "09121234567"


@pytest.fixture
def client(client: TestClient, context: AppContext) -> TestClient:
    """The page is for staff: every request of these tests carries a viewer's token."""
    client.headers.update(staff_token(context, "viewer", username="page-viewer"))
    return client


@pytest.fixture
def reported(context: AppContext) -> AppContext:
    """The example plan and 40 TAX transactions on 2026-03-09 (one resent)."""
    add_tax_agency(context)
    with transaction(context.sessions) as session:
        plans.apply_plan(session, CLI_PRINCIPAL, EXAMPLE_PLAN, file="example.yaml")
    records = [
        {
            "external_id": f"t{i}",
            "service": "TAX-01" if i % 2 else "TAX-02",
            "channel": "in_person" if i % 2 else "online",
            "completed_at": "2026-03-09T10:00:00+03:30",
            "phone": f"0912{i:07d}" if i else PHONE,
        }
        for i in range(40)
    ]
    result = ingest_transactions(context, "TAX", [*records, records[0]])
    assert (result.accepted, result.duplicates) == (40, 1)
    return context


def test_persian_by_default_right_to_left_with_solar_hijri_dates(
    client: TestClient, reported: AppContext
) -> None:
    response = client.get("/ingestion")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="fa" dir="rtl">' in html
    assert 'href="/ingestion?lang=en"' in html and ">English</a>" in html
    assert (
        '۱۹ اسفند ۱۴۰۴ (<bdi dir="ltr">2026-03-10</bdi>)' in html
    )  # today, Solar Hijri + Gregorian
    assert "سازمان امور مالیاتی کشور" in html
    assert '<td data-label="گزارش‌شده">۴۰</td>' in html  # reported by agency, Persian digits
    assert '<td data-label="تکراری">۱</td>' in html
    assert "<script" not in html and " style=" not in html
    assert PHONE not in html and "agk_" not in html and "stk_" not in html


def test_english_on_request(client: TestClient, reported: AppContext) -> None:
    html = client.get("/ingestion?lang=en").text
    assert '<html lang="en" dir="ltr">' in html
    assert 'href="/ingestion?lang=fa"' in html
    assert '19 Esfand 1404 (<bdi dir="ltr">2026-03-10</bdi>)' in html
    assert "Iranian National Tax Administration" in html
    assert "Sampling plan in force" in html and "example" in html
    assert '<td data-label="Reported">40</td>' in html
    # The per-day table covers 14 days ending today, the reports on 2026-03-09.
    assert html.count('<th scope="row">') >= 14
    assert '18 Esfand 1404 (<bdi dir="ltr">2026-03-09</bdi>)' in html
    assert client.get("/ingestion?lang=xx").text.startswith('<!doctype html>\n<html lang="fa"')


def test_an_empty_service_says_so(client: TestClient) -> None:
    html = client.get("/ingestion?lang=en").text
    assert "No sampling plan is in force yet" in html
    assert "No transactions have been reported yet." in html


def test_the_stylesheet_is_served(client: TestClient) -> None:
    response = client.get("/static/staff.css")
    assert response.status_code == 200 and "@media (max-width: 40rem)" in response.text


def test_in_production_the_page_needs_a_staff_token(migrated_settings: Settings, clock) -> None:
    production = migrated_settings.with_overrides(env="production")
    context = AppContext.build(production, clock=clock)
    try:
        with TestClient(create_app(production, context=context)) as client:
            assert client.get("/ingestion").status_code == 401
            headers = staff_token(context, "viewer")
            assert client.get("/ingestion", headers=headers).status_code == 200
    finally:
        context.close()
