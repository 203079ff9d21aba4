"""Frame counts read back: by stratum, by day, per agency; and who may see them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from litestar.testing import TestClient

from survey.context import AppContext
from survey.errors import InvalidInput
from survey.ingestion.frames import COUNTERS, frame_counts
from survey.ingestion.ingest import ingest_transactions
from tests.conftest import FixedClock
from tests.survey.builders import add_agency, add_plan, add_staff, transaction_record

URL = "/api/v1/frame-counts"


@pytest.fixture
def ingested(context: AppContext, clock: FixedClock) -> dict[str, int]:
    tax = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    sso = add_agency(context, "SSO", ("SSO-01",))
    add_plan(context)
    clock.now = datetime(2026, 3, 12, 12, tzinfo=UTC)
    ingest_transactions(
        context,
        "TAX",
        [
            transaction_record(1),
            transaction_record(2, completed_at="2026-03-11T10:00:00+03:30"),
            transaction_record(3, service="TAX-02", channel="online", province="fars"),
            transaction_record(1),
        ],
    )
    ingest_transactions(context, "SSO", [transaction_record(4, service="SSO-01", channel="phone")])
    return {"TAX": tax.id, "SSO": sso.id}


def test_totals_by_stratum_sum_the_cells(context: AppContext, ingested: dict[str, int]) -> None:
    with context.read_sessions() as session:
        totals = frame_counts(session, plan_version=1)
    by_stratum = {t.group["stratum"]: (t.reported, t.duplicates, t.sampled) for t in totals}
    assert by_stratum["agency=TAX|service=TAX-01|channel=in_person"] == (2, 1, 2)
    assert by_stratum["agency=TAX|service=TAX-02|channel=online"][:2] == (1, 0)
    assert by_stratum["agency=SSO|service=SSO-01|channel=phone"][:2] == (1, 0)
    assert {t.group["plan"] for t in totals} == {1}


def test_day_ranges_and_agencies_filter(context: AppContext, ingested: dict[str, int]) -> None:
    with context.read_sessions() as session:
        one_day = frame_counts(
            session, start=date(2026, 3, 11), end=date(2026, 3, 11), by=("day", "service")
        )
        tax_only = frame_counts(session, agency_id=ingested["TAX"], by=("agency", "province"))
    assert [(t.group, t.reported) for t in one_day] == [
        ({"day": "2026-03-11", "service": "TAX-01"}, 1)
    ]
    assert [(t.group, t.reported) for t in tax_only] == [
        ({"agency": "TAX", "province": ""}, 2),
        ({"agency": "TAX", "province": "fars"}, 1),
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"by": ("colour",)}, "unknown grouping 'colour'"),
        ({"start": date(2026, 3, 2), "end": date(2026, 3, 1)}, "is after to"),
        ({"plan_version": 9}, "plan version 9 does not exist"),
    ],
)
def test_bad_questions_are_refused(
    context: AppContext, ingested: dict[str, int], arguments: dict, message: str
) -> None:
    with context.read_sessions() as session, pytest.raises(InvalidInput) as caught:
        frame_counts(session, **arguments)
    assert message in str(caught.value)


def test_staff_read_frame_counts_over_http(
    client: TestClient, context: AppContext, ingested: dict[str, int]
) -> None:
    token = add_staff(context, "stat", "statistician")
    response = client.get(
        URL,
        params={"plan": 1, "from": "2026-03-01", "to": "2026-03-31"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["plan"], body["from"], body["to"], body["by"]) == (
        1,
        "2026-03-01",
        "2026-03-31",
        ["plan", "stratum"],
    )
    assert {row["stratum"]: row["reported"] for row in body["rows"]} == {
        "agency=SSO|service=SSO-01|channel=phone": 1,
        "agency=TAX|service=TAX-01|channel=in_person": 2,
        "agency=TAX|service=TAX-02|channel=online": 1,
    }


def test_an_agency_operator_sees_only_their_agency(
    client: TestClient, context: AppContext, ingested: dict[str, int]
) -> None:
    token = add_staff(context, "operator", "agency", agency_id=ingested["SSO"])
    response = client.get(
        URL, params={"by": "agency"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert [row["agency"] for row in response.json()["rows"]] == ["SSO"]


def test_others_may_not_read_frame_counts(
    client: TestClient, context: AppContext, ingested: dict[str, int]
) -> None:
    viewer = add_staff(context, "viewer", "viewer")
    for key, status in ((viewer, 403), ("stk_unknown", 401), ("agk_unknown", 401)):
        response = client.get(URL, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == status
    bad = client.get(
        URL,
        params={"by": "colour"},
        headers={"Authorization": f"Bearer {add_staff(context, 'a', 'admin')}"},
    )
    assert bad.status_code == 422
    assert "unknown grouping 'colour'" in bad.json()["problems"][0]["message"]


def test_an_agency_key_reads_its_own_agency_counts_only(
    client: TestClient, context: AppContext, ingested: dict[str, int]
) -> None:
    """An agency's system reads its own frame counts with its ingestion key; naming another
    agency (or one that does not exist) is a 403; staff read any agency's, or all."""
    key = {"Authorization": f"Bearer {add_agency(context, 'MUN', ('MUN-01',)).key}"}
    edu_key = {"Authorization": f"Bearer {add_agency(context, 'EDU', ('EDU-01',)).key}"}
    ingest_transactions(context, "EDU", [transaction_record(9, service="EDU-01")])
    own = client.get(URL, params={"by": "agency,service"}, headers=edu_key)
    assert own.status_code == 200, own.text
    [row] = own.json()["rows"]
    assert (row["agency"], row["service"], row["reported"], row["duplicates"]) == (
        "EDU",
        "EDU-01",
        1,
        0,
    )
    assert set(row) == {"agency", "service", *COUNTERS}
    named = client.get(URL, params={"by": "agency", "agency": "EDU"}, headers=edu_key)
    assert [row["agency"] for row in named.json()["rows"]] == ["EDU"]
    assert named.json()["agency"] == "EDU"
    nothing_yet = client.get(URL, params={"by": "agency"}, headers=key)
    assert nothing_yet.status_code == 200 and nothing_yet.json()["rows"] == []
    for other in ("TAX", "SSO", "NOPE"):
        refused = client.get(URL, params={"agency": other}, headers=key)
        assert refused.status_code == 403, (other, refused.text)
        assert "only the frame counts of your own agency (MUN)" in refused.json()["error"]
    admin = {"Authorization": f"Bearer {add_staff(context, 'a', 'admin')}"}
    sso = client.get(URL, params={"by": "agency", "agency": "SSO"}, headers=admin)
    assert [(r["agency"], r["reported"]) for r in sso.json()["rows"]] == [("SSO", 1)]
    everyone = client.get(URL, params={"by": "agency"}, headers=admin).json()["rows"]
    assert {r["agency"] for r in everyone} == {"TAX", "SSO", "EDU"}
    unknown = client.get(URL, params={"agency": "NOPE"}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["problems"] == [
        {"message": "agency 'NOPE' is not registered", "field": "agency"}
    ]
