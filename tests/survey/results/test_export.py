"""The export for analysis: design columns, weights that add up to the frame counts, scores,
the companion frame-count file, and never a phone or a token."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.cli import main
from survey.context import AppContext
from survey.models import AuditLog
from survey.results.export import ExportError, export_responses, pseudonymous_id, write_export
from tests.survey.answer_builders import AnswerWorld, Invited

T = datetime(2026, 3, 9, 8, 0).astimezone()
ESFAND, FARVARDIN = date(2026, 3, 8), date(2026, 3, 25)
TAX = {"agency": "TAX", "service": "TAX-01", "channel": "in_person"}
EDU = {"agency": "EDU", "service": "EDU-01", "channel": "online"}
ANSWERS = {
    "q_overall": 5,
    "q_time": 4,
    "q_respect": "na",
    "q_competence": 3,
    "q_information": 4,
    "q_fairness": 5,
    "q_ease": 2,
    "q_outcome": 2,
    "q_next_steps": 1,
    "q_trust": 4,
    "q_improve": "صف کوتاه‌تر, please",
}


class Built:
    def __init__(self, world: AnswerWorld) -> None:
        self.world = world
        self.invited: list[Invited] = []

    def invite(self, **kwargs: object) -> Invited:
        invited = self.world.invite(**kwargs)  # type: ignore[arg-type]
        self.invited.append(invited)
        return invited


@pytest.fixture
def built(context: AppContext) -> Built:
    """Esfand 1404: TAX-01 N=150 (3 complete, 1 partial, 1 silent), EDU-01 N=40 (2 complete),
    TAX-02 N=30 (no respondents); Farvardin 1405: TAX-01 N=80 (1 complete)."""
    world = AnswerWorld(context)
    b = Built(world)
    world.frame_count(**TAX, province="tehran", day=ESFAND, eligible=100, sampled=9)
    world.frame_count(**TAX, province="fars", day=date(2026, 3, 9), eligible=50, sampled=6)
    world.frame_count(**EDU, province="tehran", day=ESFAND, eligible=40, sampled=4)
    world.frame_count(
        agency="TAX", service="TAX-02", channel="phone", day=ESFAND, eligible=30, sampled=3
    )
    world.frame_count(**TAX, day=FARVARDIN, eligible=80, sampled=8)
    for score in (1, 3, 5):
        world.respond(b.invite(**TAX), {**ANSWERS, "q_overall": score}, at=T)
    world.respond(b.invite(**TAX, province="fars"), {"q_overall": 2}, status="partial", at=T)
    b.invite(**TAX)
    for _ in range(2):
        world.respond(b.invite(**EDU, inclusion_probability=0.2), ANSWERS, channel="sms", at=T)
    world.respond(b.invite(**TAX, day=FARVARDIN), ANSWERS, at=T)
    return b


def test_weights_sum_to_the_frame_counts_within_each_stratum(
    context: AppContext, built: Built
) -> None:
    result = export_responses(context, date(2026, 3, 1), date(2026, 3, 31))
    rows = result.responses
    assert len(rows) == 6 and set(rows["status"]) == {"completed"}
    sums = rows.groupby("stratum")["weight"].sum()
    n_h = rows.groupby("stratum")["N_h"].first()
    pd.testing.assert_series_equal(sums, n_h.astype(float), check_names=False)
    tax = "1404-12/v1/agency=TAX|service=TAX-01|channel=in_person"
    assert sums.to_dict() == pytest.approx(
        {
            tax: 150.0,
            "1404-12/v1/agency=EDU|service=EDU-01|channel=online": 40.0,
            "1405-01/v1/agency=TAX|service=TAX-01|channel=in_person": 80.0,
        }
    )
    first = rows[rows["stratum"] == tax].iloc[0]
    assert (first["N_h"], first["n_sampled_h"], first["n_responding_h"]) == (150, 15, 3)
    assert first["weight"] == pytest.approx(50.0)
    assert first["base_weight"] == pytest.approx(10.0)
    assert first["inclusion_probability"] == pytest.approx(0.1)
    assert (first["period"], first["plan_version"], first["province"]) == ("1404-12", 1, "tehran")
    edu = rows[rows["agency"] == "EDU"]
    assert set(edu["mode"]) == {"sms"} and set(edu["base_weight"]) == {5.0}


def test_partial_responses_only_when_asked_and_flagged(context: AppContext, built: Built) -> None:
    result = export_responses(context, date(2026, 3, 1), date(2026, 3, 20), include_partial=True)
    rows = result.responses
    assert sorted(rows["status"]) == ["completed"] * 5 + ["partial"]
    tax = rows[rows["service"] == "TAX-01"]
    assert set(tax["n_responding_h"]) == {4}
    assert tax["weight"].sum() == pytest.approx(150.0)
    partial = rows[rows["status"] == "partial"].iloc[0]
    assert partial["q_overall"] == 2 and pd.isna(partial["index"])


def test_answers_scores_index_and_satisfied(context: AppContext, built: Built) -> None:
    rows = export_responses(context, date(2026, 3, 1), date(2026, 3, 20)).responses
    top = rows[(rows["service"] == "TAX-01") & (rows["q_overall"] == 5)].iloc[0]
    assert top["q_respect"] == "na" and top["q_improve"] == "صف کوتاه‌تر, please"
    assert top["score_q_overall"] == 100.0 and top["score_q_ease"] == 25.0
    assert pd.isna(top["score_q_respect"])
    # index: (2*100 + 75 + 50 + 75 + 100 + 25) / 7 (q_respect not applicable)
    assert top["index"] == pytest.approx((200 + 75 + 50 + 75 + 100 + 25) / 7)
    assert top["satisfied"] == 1
    low = rows[(rows["service"] == "TAX-01") & (rows["q_overall"] == 1)].iloc[0]
    assert low["satisfied"] == 0
    columns = list(rows.columns)
    assert columns.index("mode") < columns.index("q_overall") < columns.index("score_q_overall")
    assert columns[-2:] == ["index", "satisfied"]


def test_no_phone_no_token_no_internal_id_in_either_file(
    context: AppContext, built: Built, tmp_path: Path
) -> None:
    result = export_responses(context, date(2026, 3, 1), date(2026, 3, 31), include_partial=True)
    responses, frames = write_export(result, tmp_path / "out" / "export.csv")
    text = responses.read_text("utf-8") + frames.read_text("utf-8")
    assert frames.name == "export.frame_counts.csv"
    for invited in built.invited:
        assert invited.phone not in text
        assert invited.phone[1:] not in text  # not even without the leading zero
        assert invited.token not in text and invited.token.upper() not in text
        assert context.vault.phone_hash(invited.phone) not in text
    ids = pd.read_csv(responses)["response_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{20}").all() and ids.is_unique
    assert pseudonymous_id(context.settings.secret_key, 1) in set(ids)
    assert pseudonymous_id(context.settings.secret_key, 1) != pseudonymous_id(bytes(32), 1)


def test_companion_frame_counts(context: AppContext, built: Built) -> None:
    frames = export_responses(context, date(2026, 3, 1), date(2026, 3, 31)).frame_counts
    strata = frames[frames["margin"] == "stratum"].set_index("stratum")
    silent = strata.loc["1404-12/v1/agency=TAX|service=TAX-02|channel=phone"]
    assert (silent["N"], silent["n_sampled"], silent["n_responding"]) == (30, 3, 0)
    assert strata["N"].sum() == 150 + 40 + 30 + 80
    provinces = frames[(frames["margin"] == "agency_province") & (frames["agency"] == "TAX")]
    esfand = provinces[provinces["period"] == "1404-12"].set_index("province")
    assert esfand.loc["tehran", "N"] == 130 and esfand.loc["fars", "N"] == 50
    assert esfand.loc["tehran", "n_responding"] == 3
    channels = frames[(frames["margin"] == "agency_channel") & (frames["period"] == "1404-12")]
    assert channels.set_index(["agency", "channel"])["N"].to_dict() == {
        ("EDU", "online"): 40,
        ("TAX", "in_person"): 150,
        ("TAX", "phone"): 30,
    }


def test_missing_frame_counts_fail_loudly(context: AppContext) -> None:
    world = AnswerWorld(context)
    world.respond(world.invite(**TAX), ANSWERS, at=T)
    with pytest.raises(ExportError) as caught:
        export_responses(context, date(2026, 3, 1), date(2026, 3, 31))
    assert "agency=TAX|service=TAX-01" in str(caught.value)
    assert "N_h = 0" in str(caught.value)


def test_reversed_range_is_refused(context: AppContext) -> None:
    with pytest.raises(ExportError, match="reversed"):
        export_responses(context, date(2026, 3, 31), date(2026, 3, 1))


def test_cli_writes_both_files(
    context: AppContext, built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    settings = context.settings
    monkeypatch.setenv("SURVEY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(settings.var_dir))
    out = tmp_path / "resp.csv"
    code = main(["export", "responses", "--from", "1404-12-01", "--to", "2026-03-31",
                 "--out", str(out), "--include-partial"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "wrote 7 responses" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 7
    assert (tmp_path / "resp.frame_counts.csv").exists()
    with context.read_sessions() as session:
        logged = session.scalars(sa.select(AuditLog).where(AuditLog.action == "export.responses"))
        (entry,) = list(logged)
    assert entry.after == {"rows": 7, "include_partial": True, "target": str(out)}
    assert main(["export", "responses", "--from", "2026-02-30", "--to", "2026-03-31",
                 "--out", str(out)]) == 2  # fmt: skip
    assert (
        "error: --from: expected a day that exists (February 2026 has 28 days); got '2026-02-30'"
        in capsys.readouterr().err
    )


def test_staff_api_serves_csv_to_statisticians_only(
    client: TestClient, context: AppContext, built: Built
) -> None:
    world = built.world
    key = world.staff_key("statistician")
    got = client.get(
        "/api/v1/export/responses",
        params={"from": "2026-03-01", "to": "1404-12-29"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(got.text))
    assert len(table) == 5 and abs(table["weight"].sum() - 190.0) < 1e-9
    frames = client.get(
        "/api/v1/export/frame-counts",
        params={"from": "2026-03-01", "to": "2026-03-31"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert frames.status_code == 200 and frames.text.startswith("margin,period,stratum")
    viewer = world.staff_key("viewer")
    refused = client.get(
        "/api/v1/export/responses",
        params={"from": "2026-03-01", "to": "2026-03-31"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert refused.status_code == 403
    bad = client.get(
        "/api/v1/export/responses",
        params={"from": "2026-03-31", "to": "2026-03-01"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "from"
