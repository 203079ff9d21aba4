"""AAPOR rates on a hand-built set of invitations, against hand-computed values."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from litestar.testing import TestClient

from survey.cli import main
from survey.context import AppContext
from survey.errors import InvalidInput
from survey.kernel.periods import parse_period
from survey.results.rates import dispositions, rates, response_rates
from tests.survey.answer_builders import AnswerWorld

T = datetime(2026, 3, 9, 8, 0).astimezone()


@pytest.fixture
def world(context: AppContext) -> AnswerWorld:
    """TAX/in_person: I=3 P=1 R=2 NC=3 UH=1 UO=2; EDU/online: I=1 O=1 NC=1; one outside."""
    w = AnswerWorld(context)
    tax = {"agency": "TAX", "service": "TAX-01", "channel": "in_person"}
    edu = {"agency": "EDU", "service": "EDU-01", "channel": "online"}
    for _ in range(3):
        w.invite(**tax, status="completed", sent_at=T, opened_at=T, completed_at=T)
    w.invite(**tax, status="partial", sent_at=T, opened_at=T, partial_at=T)
    w.invite(**tax, status="opted_out", sent_at=T, opted_out_at=T)
    w.invite(**tax, status="expired", sent_at=T, opened_at=T, expired_at=T)
    w.invite(**tax, status="sent", sent_at=T)
    w.invite(**tax, status="expired", sent_at=T, expired_at=T)
    w.invite(**tax, status="delivered", sent_at=T, delivered_at=T)
    w.invite(**tax, status="failed", sent_at=T, failed_at=T)
    w.invite(**tax, status="pending")
    w.invite(**tax, status="pending")
    w.invite(**edu, status="completed", sent_at=T, opened_at=T, partial_at=T, completed_at=T)
    w.invite(**edu, status="cancelled", sent_at=T)
    w.invite(**edu, status="sent", sent_at=T, mode="sms_dialog")
    w.invite(**tax, day=date(2026, 3, 25), status="completed", completed_at=T)  # 1405-01
    return w


def _row(table: list[dict], key: str, value: str) -> dict:
    (row,) = [r for r in table if r[key] == value]
    return row


def test_rates_by_agency_match_hand_computation(context: AppContext, world: AnswerWorld) -> None:
    with context.read_sessions() as session:
        table = response_rates(session, parse_period("1404-12"), by="agency").records()
    tax = _row(table, "agency", "TAX")
    assert {k: tax[k] for k in ("I", "P", "R", "NC", "O", "UH", "UO", "total")} == {
        "I": 3, "P": 1, "R": 2, "NC": 3, "O": 0, "UH": 1, "UO": 2, "total": 12,
    }  # fmt: skip
    assert tax["RR1"] == pytest.approx(3 / 12)
    assert tax["RR2"] == pytest.approx(4 / 12)
    assert tax["COOP1"] == pytest.approx(3 / 6)
    assert tax["CON1"] == pytest.approx(6 / 12)
    edu = _row(table, "agency", "EDU")
    assert (edu["I"], edu["O"], edu["NC"], edu["total"]) == (1, 1, 1, 3)
    assert edu["RR1"] == pytest.approx(1 / 3)
    assert edu["COOP1"] == pytest.approx(1 / 2)
    assert edu["CON1"] == pytest.approx(2 / 3)
    overall = table[0]
    assert overall["agency"] == "all" and overall["total"] == 15
    assert overall["RR1"] == pytest.approx(4 / 15)
    assert overall["RR2"] == pytest.approx(5 / 15)


def test_rates_by_channel_mode_and_the_next_period(context: AppContext, world: AnswerWorld) -> None:
    with context.read_sessions() as session:
        by_channel = response_rates(session, parse_period("1404-12"), by="channel").records()
        by_mode = response_rates(session, parse_period("1404-12"), by="mode").records()
        farvardin = response_rates(session, parse_period("1405-01"), by="agency").records()
    assert _row(by_channel, "channel", "online")["total"] == 3
    assert _row(by_mode, "mode", "sms_dialog")["NC"] == 1
    assert [r["agency"] for r in farvardin] == ["all", "TAX"]
    assert farvardin[0]["RR1"] == 1.0


def test_pure_rates_and_empty_denominators() -> None:
    counts = pd.DataFrame(
        {
            "I": [0, 2],
            "P": [0, 0],
            "R": [0, 1],
            "NC": [0, 1],
            "O": [0, 0],
            "UH": [0, 0],
            "UO": [0, 0],
        }
    )
    out = rates(counts)
    assert np.isnan(out.loc[0, "RR1"]) and np.isnan(out.loc[0, "CON1"])
    assert out.loc[1, "RR1"] == pytest.approx(0.5)
    assert out.loc[1, "COOP1"] == pytest.approx(2 / 3)
    assert out.loc[1, "CON1"] == pytest.approx(3 / 4)


def test_disposition_precedence() -> None:
    t = pd.Timestamp("2026-03-09", tz="UTC")
    frame = pd.DataFrame(
        [
            ("completed", t, t, None, None, None, None, None),  # opted out later: still I
            ("opted_out", None, t, t, t, None, t, None),  # refusal beats partial
            ("expired", None, None, None, None, t, t, t),  # delivered beats failed
            ("expired", None, None, None, None, None, None, None),  # never sent
        ],
        columns=["status", "completed_at", "opted_out_at", "partial_at", "opened_at",
                 "delivered_at", "sent_at", "failed_at"],
    )  # fmt: skip
    assert list(dispositions(frame)) == ["I", "R", "NC", "UO"]


def test_bad_grouping_is_refused(context: AppContext, world: AnswerWorld) -> None:
    with context.read_sessions() as session, pytest.raises(InvalidInput, match="by"):
        response_rates(session, parse_period("1404-12"), by="colour")


def test_staff_api_and_agency_scope(
    client: TestClient, context: AppContext, world: AnswerWorld
) -> None:
    statistician = world.staff_key("statistician")
    ok = client.get(
        "/api/v1/rates",
        params={"period": "1404-12", "by": "agency"},
        headers={"Authorization": f"Bearer {statistician}"},
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["period"] == {
        "label": "1404-12", "calendar": "solar_hijri", "start": "2026-02-20", "end": "2026-03-21"
    }  # fmt: skip
    assert _row(body["rows"], "agency", "TAX")["RR1"] == pytest.approx(0.25)

    operator = world.staff_key("agency", agency="EDU")
    mine = client.get(
        "/api/v1/rates",
        params={"period": "1404-12"},
        headers={"Authorization": f"Bearer {operator}"},
    ).json()
    assert [r["agency"] for r in mine["rows"]] == ["all", "EDU"]

    bad = client.get(
        "/api/v1/rates",
        params={"period": "1404-13"},
        headers={"Authorization": f"Bearer {statistician}"},
    )
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "period"
    assert client.get("/api/v1/rates", params={"period": "1404-12"}).status_code == 401


def test_cli_prints_rates(
    context: AppContext, world: AnswerWorld, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    settings = context.settings
    monkeypatch.setenv("SURVEY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(settings.var_dir))
    assert main(["rates", "--period", "1404-12", "--by", "agency"]) == 0
    out = capsys.readouterr().out
    assert "RR1" in out and "TAX" in out and "0.250" in out
    assert main(["rates", "--period", "1404-12", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("agency,I,P,R,NC,O,UH,UO,total,RR1")
    assert main(["rates", "--period", "Esfand"]) == 2
    assert "period: expected" in capsys.readouterr().err


def test_period_uses_the_transaction_day_and_counts_every_sampled_unit(context: AppContext) -> None:
    world = AnswerWorld(context)
    world.invite(day=date(2026, 3, 20), status="completed", completed_at=T)
    world.invite(day=date(2026, 3, 21), status="sent", sent_at=T + timedelta(days=1))
    world.invite(day=date(2026, 3, 21), with_invitation=False)  # sampled, not invited yet
    with context.read_sessions() as session:
        esfand = response_rates(session, parse_period("1404-12")).records()
        farvardin = response_rates(session, parse_period("1405-01")).records()
    assert esfand[0]["I"] == 1 and esfand[0]["total"] == 1
    assert farvardin[0]["NC"] == 1 and farvardin[0]["UO"] == 1 and farvardin[0]["total"] == 2
