"""compute_release: the numbers of a publication release from an export and its frame counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.design import SurveyDesign
from analysis.quality import QualityRules
from analysis.release import (
    ESTIMATE_COLUMNS,
    ITEM_COLUMNS,
    SMALL_AREA_COLUMNS,
    ReleaseError,
    ReleaseTables,
    calibrated_design,
    compute_release,
)

PROVINCES = ["THR", "ISF", "FRS", "KHR", "TBZ", "GLN"]
ITEMS = ["q_time", "q_information", "q_ease"]


def make_export(
    seed: int = 1,
    period: str = "1405-01",
    agencies: dict[str, tuple[float, int]] | None = None,
    shift: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic export in the service's layout (docs/export.md) and its frame counts.

    ``agencies`` maps code -> (mean index, responses per stratum); every agency has two
    services x two channels; provinces are drawn with unequal shares.
    """
    rng = np.random.default_rng(seed)
    agencies = agencies or {
        "TAX": (78.0, 90),
        "EDU": (60.0, 60),
        "HLT": (55.0, 25),
        "POS": (40.0, 3),
    }
    share = np.array([0.4, 0.2, 0.15, 0.12, 0.08, 0.05])
    responses, strata, by_province = [], [], []
    for agency, (level, n_resp) in agencies.items():
        for s in (1, 2):
            for channel in ("in_person", "online"):
                plan_stratum = f"agency={agency}|service={agency}-0{s}|channel={channel}"
                stratum = f"{period}/v1/{plan_stratum}"
                N_h = int(rng.integers(2_000, 6_000))
                N_hp = rng.multinomial(N_h, share)
                sampled = max(n_resp * 3, 10)
                strata.append((stratum, plan_stratum, N_h, sampled, n_resp))
                by_province.append((agency, channel, N_hp, sampled))
                if n_resp == 0:
                    continue
                province = rng.choice(PROVINCES, size=n_resp, p=N_hp / N_h)
                base = level + shift + (4.0 if channel == "online" else 0.0)
                items = np.clip(rng.normal(base, 18, size=(n_resp, 3)), 0, 100)
                items = np.round(items / 25) * 25
                overall = np.clip(
                    np.round((items.mean(axis=1) + rng.normal(0, 10, n_resp)) / 25), 0, 4
                )
                index = items.mean(axis=1)
                frame = pd.DataFrame(
                    {
                        "response_id": [f"{agency}{s}{channel}{i}" for i in range(n_resp)],
                        "status": "completed",
                        "questionnaire": "core-transaction",
                        "questionnaire_version": 1,
                        "agency": agency,
                        "service": f"{agency}-0{s}",
                        "channel": channel,
                        "province": province,
                        "period": period,
                        "plan_version": 1,
                        "plan_stratum": plan_stratum,
                        "stratum": stratum,
                        "N_h": N_h,
                        "n_sampled_h": sampled,
                        "n_responding_h": n_resp,
                        "inclusion_probability": sampled / N_h,
                        "base_weight": N_h / sampled,
                        "weight": N_h / n_resp,
                        "mode": "web",
                        "q_overall": overall + 1,
                        **{f"score_{q}": items[:, j] for j, q in enumerate(ITEMS)},
                        "index": index,
                        "satisfied": (overall >= 3).astype(int),
                    }
                )
                responses.append(frame)
    responses_df = pd.concat(responses, ignore_index=True)
    rows = [
        {"margin": "stratum", "period": period, "stratum": st, "plan_version": 1,
         "plan_stratum": ps, "N": N, "n_sampled": ns, "n_responding": nr}
        for st, ps, N, ns, nr in strata
    ]  # fmt: skip
    prov = {}
    chan = {}
    for agency, channel, N_hp, sampled in by_province:
        for p, N in zip(PROVINCES, N_hp, strict=True):
            cell = prov.setdefault((agency, p), [0, 0])
            cell[0] += int(N)
            cell[1] += round(sampled * N / N_hp.sum())
        cell = chan.setdefault((agency, channel), [0, 0])
        cell[0] += int(N_hp.sum())
        cell[1] += sampled
    rows += [
        {"margin": "agency_province", "period": period, "agency": a, "province": p, "N": N,
         "n_sampled": ns}
        for (a, p), (N, ns) in prov.items()
    ]  # fmt: skip
    rows += [
        {"margin": "agency_channel", "period": period, "agency": a, "channel": c, "N": N,
         "n_sampled": ns}
        for (a, c), (N, ns) in chan.items()
    ]  # fmt: skip
    return responses_df, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def export() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_export()


@pytest.fixture(scope="module")
def release(export: tuple[pd.DataFrame, pd.DataFrame]) -> ReleaseTables:
    previous = make_export(seed=2, period="1404-12", shift=-8.0)
    return compute_release(*export, previous=previous, drivers=ITEMS)


def row(table: pd.DataFrame, **keys: str) -> pd.Series:
    pick = np.ones(len(table), dtype=bool)
    for k, v in keys.items():
        pick &= (table[k] == v).to_numpy()
    assert pick.sum() == 1, keys
    return table[pick].iloc[0]


def test_tables_have_the_contract_columns(release: ReleaseTables) -> None:
    assert list(release.estimates.columns) == ESTIMATE_COLUMNS
    assert list(release.items.columns) == ITEM_COLUMNS
    assert list(release.small_areas.columns) == SMALL_AREA_COLUMNS
    levels = set(release.estimates["level"])
    assert levels == {
        "national",
        "agency",
        "agency_channel",
        "service",
        "province",
        "agency_province",
    }
    assert set(release.estimates["measure"]) == {"index", "satisfied"}


def test_agency_index_equals_the_analysis_package_after_the_same_calibration(
    export: tuple[pd.DataFrame, pd.DataFrame], release: ReleaseTables
) -> None:
    design, _ = calibrated_design(*export)
    direct = design.mean("index", by="agency", dropna=True).set_index("agency")
    share = design.proportion("satisfied", by="agency", dropna=True).set_index("agency")
    for agency in ("TAX", "EDU", "HLT"):
        got = row(release.estimates, level="agency", agency=agency, measure="index")
        assert got["estimate"] == pytest.approx(direct.loc[agency, "estimate"], rel=1e-12)
        assert got["se"] == pytest.approx(direct.loc[agency, "se"], rel=1e-12)
        assert got["ci_low"] == pytest.approx(direct.loc[agency, "ci_low"], rel=1e-12)
        sat = row(release.estimates, level="agency", agency=agency, measure="satisfied")
        assert sat["estimate"] == pytest.approx(100 * share.loc[agency, "estimate"], rel=1e-12)
        assert sat["ci_high"] == pytest.approx(100 * share.loc[agency, "ci_high"], rel=1e-12)
    national = row(release.estimates, level="national", measure="index")
    assert national["estimate"] == pytest.approx(float(design.mean("index")["estimate"].iloc[0]))


def test_calibrated_weights_add_up_to_the_frame_counts(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    responses, frame = export
    design, notes = calibrated_design(responses, frame)
    data = design.data.assign(w=design.weights)
    margin = frame[frame["margin"] == "agency_channel"].set_index(["agency", "channel"])["N"]
    got = data.groupby(["agency", "channel"])["w"].sum()
    for key in got.index:
        assert got[key] == pytest.approx(margin[key], rel=1e-8)
    prov = frame[frame["margin"] == "agency_province"]
    tax = prov[prov["agency"] == "TAX"].set_index("province")["N"]
    got_tax = data[data["agency"] == "TAX"].groupby("province")["w"].sum()
    for p in got_tax.index:
        assert got_tax[p] == pytest.approx(tax[p], rel=1e-6)
    assert "raked" in notes["calibration"]


def test_export_weights_are_verified_and_repaired_when_they_do_not_add_up(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    responses, frame = export
    wrong = responses.assign(weight=responses["base_weight"])
    design, notes = calibrated_design(wrong, frame)
    assert "rescaled" in notes["nonresponse"]
    ok_design, ok_notes = calibrated_design(responses, frame)
    assert "verified" in ok_notes["nonresponse"]
    np.testing.assert_allclose(design.weights, ok_design.weights, rtol=1e-8)


def test_small_agency_is_suppressed_and_shows_no_numbers(release: ReleaseTables) -> None:
    pos = row(release.estimates, level="agency", agency="POS", measure="index")
    assert pos["suppressed"] and pos["grade"] == "suppressed"
    assert pos["n"] == 12
    for c in ("estimate", "se", "ci_low", "ci_high", "df", "cv", "change"):
        assert pd.isna(pos[c]), c
    assert pd.isna(pos["rank"])
    tax = row(release.estimates, level="agency", agency="TAX", measure="index")
    assert tax["grade"] == "A" and not tax["suppressed"]


def test_response_rate_is_responses_over_sampled(release: ReleaseTables) -> None:
    tax = row(release.estimates, level="agency", agency="TAX", measure="index")
    assert tax["n_sampled"] == 4 * 270
    assert tax["response_rate"] == pytest.approx(360 / 1080)
    nat = row(release.estimates, level="national", measure="index")
    assert nat["n_sampled"] == 4 * (270 + 180 + 75 + 10)


def test_change_is_significant_only_when_its_interval_excludes_zero(
    release: ReleaseTables,
) -> None:
    est = release.estimates
    has = est["change"].notna()
    assert has.sum() > 10
    part = est[has]
    excludes = (part["change_ci_low"] > 0) | (part["change_ci_high"] < 0)
    assert (part["change_significant"] == excludes).all()
    assert not est.loc[~has, "change_significant"].any()
    tax = row(est, level="agency", agency="TAX", measure="index")
    assert tax["change"] == pytest.approx(tax["estimate"] - tax["previous_estimate"])
    assert tax["change_significant"]  # 8 points better on 360 responses


def test_differences_from_the_national_and_agency_figures_use_their_covariance(
    export: tuple[pd.DataFrame, pd.DataFrame], release: ReleaseTables
) -> None:
    """An agency's figure is part of the national one (and a cell of its agency's): the
    interval of their difference comes from the joint covariance (compare_domains on the
    release's own design), which here is 14-33% narrower for the agencies than adding the
    two variances as if the figures were independent."""
    from analysis.contrasts import compare_domains

    est = release.estimates
    design, _ = calibrated_design(*export)
    national = row(est, level="national", measure="index")
    joint = compare_domains(design, "mean", "index", "agency", dropna=True).set_index("agency")
    for agency in ("TAX", "EDU", "HLT"):
        got = row(est, level="agency", agency=agency, measure="index")
        assert got["compared_with"] == "national"
        assert got["difference"] == pytest.approx(got["estimate"] - national["estimate"])
        assert got["difference_ci_low"] == pytest.approx(joint.loc[agency, "ci_low"], rel=1e-12)
        assert got["difference_ci_high"] == pytest.approx(joint.loc[agency, "ci_high"], rel=1e-12)
        independent = np.hypot(got["se"], national["se"])
        assert 1.13 < independent / joint.loc[agency, "se"] < 1.34
        excludes = got["difference_ci_low"] > 0 or got["difference_ci_high"] < 0
        assert got["difference_significant"] == excludes
    cell = est[(est["level"] == "agency_province") & ~est["suppressed"]].iloc[0]
    assert cell["compared_with"] == "agency"
    agency = row(est, level="agency", agency=cell["agency"], measure=cell["measure"])
    assert cell["difference"] == pytest.approx(cell["estimate"] - agency["estimate"])
    share = row(est, level="agency", agency="TAX", measure="satisfied")
    national_share = row(est, level="national", measure="satisfied")
    assert share["difference"] == pytest.approx(share["estimate"] - national_share["estimate"])
    # no comparison where a figure is suppressed, nor for the national rows
    hidden = est["suppressed"] | (est["level"] == "national")
    assert est.loc[hidden, "difference"].isna().all()
    assert (est.loc[hidden, "compared_with"] == "").all()
    assert not est.loc[hidden, "difference_significant"].any()
    assert "covariance" in release.notes["comparison"]


def test_change_interval_uses_both_standard_errors(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    previous = make_export(seed=3, period="1404-12", shift=0.0)
    now = compute_release(*export, previous=previous)
    before = compute_release(*previous)
    a = row(now.estimates, level="national", measure="index")
    b = row(before.estimates, level="national", measure="index")
    se = np.hypot(a["se"], b["se"])
    half = (a["change_ci_high"] - a["change_ci_low"]) / 2
    assert a["change"] == pytest.approx(a["estimate"] - b["estimate"])
    v1, v0 = a["se"] ** 2, b["se"] ** 2
    welch = (v1 + v0) ** 2 / (v1**2 / a["df"] + v0**2 / b["df"])
    assert half / se == pytest.approx(stats.t.ppf(0.975, welch), rel=1e-9)


def test_ranks_are_sane(release: ReleaseTables) -> None:
    agencies = release.estimates[
        (release.estimates["level"] == "agency") & (release.estimates["measure"] == "index")
    ].set_index("agency")
    assert agencies.loc["TAX", "rank"] == 1
    assert (agencies.loc["TAX", "rank_low"], agencies.loc["TAX", "rank_high"]) == (1, 1)
    shown = agencies[~agencies["suppressed"]]
    assert sorted(shown["rank"].tolist()) == list(range(1, len(shown) + 1))
    assert (shown["rank_low"] <= shown["rank"]).all() and (
        shown["rank"] <= shown["rank_high"]
    ).all()
    others = release.estimates[release.estimates["level"] != "agency"]
    assert others["rank"].isna().all()


def test_items_and_driver_importance(release: ReleaseTables) -> None:
    items = release.items
    national = items[items["level"] == "national"]
    assert set(national["item"]) == set(ITEMS)
    assert national["importance"].sum() == pytest.approx(1.0)
    assert (national["importance_note"] == "").all()
    pos = items[(items["level"] == "agency") & (items["agency"] == "POS")]
    assert pos["importance"].isna().all()
    assert (pos["importance_note"] != "").all()
    assert pos["suppressed"].all()


def test_small_areas_use_the_model_only_where_the_direct_estimate_fails(
    release: ReleaseTables,
) -> None:
    sa = release.small_areas
    assert not sa.empty
    est = release.estimates
    direct = est[(est["level"] == "agency_province") & (est["measure"] == "index")]
    merged = sa.merge(direct, on=["agency", "province"], how="left")
    used_direct = merged["used"] == "direct"
    assert (merged.loc[used_direct, "suppressed"] == False).all()  # noqa: E712
    np.testing.assert_allclose(
        merged.loc[used_direct, "direct"], merged.loc[used_direct, "estimate"]
    )
    model = sa[sa["used"] == "model"]
    assert len(model) > 0
    assert model["model"].notna().all() and (model["model_rmse"] > 0).all()
    assert (model["model_rmse"] / model["model"] <= 0.333).all()
    assert model["direct"].isna().all()
    assert "Fay-Herriot" in release.notes["small_areas"]
    assert set(sa["used"]) <= {"direct", "model", "none"}
    # POS's own index is suppressed: its cells get no model figure either
    pos = sa[sa["agency"] == "POS"]
    assert len(pos) == 6 and (pos["used"] == "none").all()
    assert pos[["direct", "model", "model_rmse"]].isna().all().all()


def test_json_round_trip(release: ReleaseTables) -> None:
    data = json.loads(json.dumps(release.to_json(), allow_nan=False))
    back = ReleaseTables.from_json(data)
    pd.testing.assert_frame_equal(back.estimates, release.estimates)
    pd.testing.assert_frame_equal(back.items, release.items)
    pd.testing.assert_frame_equal(back.small_areas, release.small_areas)
    assert back.notes == release.notes


def test_missing_answers_zero_response_strata_and_missing_province(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    responses, frame = export
    rng = np.random.default_rng(5)
    broken = responses.copy()
    broken.loc[rng.random(len(broken)) < 0.1, "index"] = np.nan
    broken.loc[rng.random(len(broken)) < 0.1, "satisfied"] = np.nan
    broken.loc[rng.random(len(broken)) < 0.05, "score_q_time"] = np.nan
    broken.loc[broken.index[:7], "province"] = ""
    # one stratum lost all its respondents: it stays in the frame counts only
    gone = broken["stratum"].iloc[0]
    broken = broken[broken["stratum"] != gone]
    out = compute_release(broken, frame, drivers=ITEMS)
    nat = row(out.estimates, level="national", measure="index")
    assert nat["n"] == broken["index"].notna().sum()
    assert "" not in set(out.estimates.loc[out.estimates["level"] == "province", "province"])


def test_a_tiny_release_does_not_crash() -> None:
    responses, frame = make_export(agencies={"ONE": (70.0, 2), "TWO": (50.0, 1)})
    out = compute_release(responses, frame, drivers=ITEMS)
    assert out.estimates["suppressed"].all()
    assert out.estimates[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert (out.estimates["n"] >= 0).all()
    assert (out.estimates.loc[out.estimates["level"] == "agency", "n"] > 0).all()
    assert json.dumps(out.to_json(), allow_nan=False)


def test_strict_rules_suppress_more(export: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    strict = compute_release(*export, rules=QualityRules(min_n=200, a_min_n=400))
    edu = row(strict.estimates, level="agency", agency="EDU", measure="index")
    assert edu["n"] == 240 and not edu["suppressed"]
    hlt = row(strict.estimates, level="agency", agency="HLT", measure="index")
    assert hlt["suppressed"]
    assert "200" in strict.notes["quality"]


def test_bad_input_is_named() -> None:
    responses, frame = make_export()
    with pytest.raises(ReleaseError, match="weight"):
        compute_release(responses.drop(columns=["weight"]), frame)
    with pytest.raises(ReleaseError, match="margin"):
        compute_release(responses, frame.drop(columns=["margin"]))
    with pytest.raises(ReleaseError, match="empty"):
        compute_release(responses.iloc[:0], frame)
    with pytest.raises(ReleaseError, match="satisfied"):
        compute_release(responses.assign(satisfied=3), frame)


def test_design_of_the_release_is_the_export_design(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Without margins in the frame counts the release is the plain export design."""
    responses, frame = export
    strata_only = frame[frame["margin"] == "stratum"]
    out = compute_release(responses, strata_only)
    plain = SurveyDesign(
        responses, weights="weight", strata="stratum", fpc="N_h", lonely_psu="adjust"
    )
    want = plain.mean("index", by="agency", dropna=True).set_index("agency")
    got = row(out.estimates, level="agency", agency="EDU", measure="index")
    assert got["estimate"] == pytest.approx(want.loc["EDU", "estimate"], rel=1e-12)


def test_many_calibration_cells_use_fixed_raked_weights(
    export: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_LINEARISED_CELLS the same raked weights are used as fixed weights: the
    same estimates, standard errors a little larger (calibration's gain left out)."""
    import analysis.release as release_module

    linearised, _ = calibrated_design(*export)
    monkeypatch.setattr(release_module, "MAX_LINEARISED_CELLS", 0)
    fixed, notes = calibrated_design(*export)
    assert "fixed" in notes["calibration"]
    np.testing.assert_allclose(fixed.weights, linearised.weights, rtol=1e-12)
    a = linearised.mean("index", by="agency", dropna=True)
    b = fixed.mean("index", by="agency", dropna=True)
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12)
    ratio = (b["se"] / a["se"]).to_numpy()
    assert ((ratio > 0.97) & (ratio < 1.1)).all(), ratio
    out = compute_release(*export)
    monkeypatch.setattr(release_module, "MAX_LINEARISED_CELLS", 0)
    again = compute_release(*export)
    pick = (out.estimates["level"] == "agency") & (out.estimates["measure"] == "index")
    np.testing.assert_allclose(
        again.estimates.loc[pick, "estimate"], out.estimates.loc[pick, "estimate"], rtol=1e-12
    )


def test_small_calibration_cells_are_pooled_within_their_agency(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    responses, frame = export
    design, notes = calibrated_design(responses, frame)
    assert "pooled within their agency" in notes["calibration"]
    data = design.data.assign(w=design.weights)
    # POS has 12 responses: all its cells are pooled, so its weights add up to its total
    pos_total = frame[(frame["margin"] == "agency_channel") & (frame["agency"] == "POS")]["N"].sum()
    assert data.loc[data["agency"] == "POS", "w"].sum() == pytest.approx(pos_total, rel=1e-8)


def test_sampled_domains_without_responses_are_listed_as_suppressed() -> None:
    responses, frame = make_export(
        agencies={"TAX": (70.0, 40), "EDU": (60.0, 40), "NIL": (50.0, 0)}
    )
    out = compute_release(responses, frame)
    nil = row(out.estimates, level="agency", agency="NIL", measure="index")
    assert nil["n"] == 0 and nil["suppressed"] and nil["grade"] == "suppressed"
    assert nil["n_sampled"] == 40 and nil["response_rate"] == 0
    assert pd.isna(nil["estimate"]) and pd.isna(nil["rank"])
    assert set(out.estimates["level"].unique()) >= {"national", "agency", "service"}


def test_previous_period_without_responses_gives_no_changes(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    responses, frame = export
    out = compute_release(responses, frame, previous=(responses.iloc[:0], frame.iloc[:0]))
    assert out.estimates["change"].isna().all()
    assert "no responses" in out.notes["previous"]
    with pytest.raises(ReleaseError, match="previous period"):
        compute_release(responses, frame, previous=(responses.drop(columns=["stratum"]), frame))


def test_unequal_weights_count_as_fewer_responses(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """An agency whose 40 responses are dominated by a few heavily weighted ones has a
    Kish effective sample size below 30 and is suppressed although n >= 30."""
    responses, frame = make_export(agencies={"TAX": (70.0, 60), "ODD": (60.0, 10)})
    # ODD: one stratum with 1 response standing for its whole (large) stratum
    odd = responses["agency"] == "ODD"
    strata = sorted(responses.loc[odd, "stratum"].unique())
    heavy = strata[0]
    keep = ~(odd & (responses["stratum"] == heavy)) | (responses.groupby("stratum").cumcount() == 0)
    responses = responses[keep].copy()
    responses.loc[responses["stratum"] == heavy, "n_responding_h"] = 1
    responses.loc[responses["stratum"] == heavy, "weight"] = responses.loc[
        responses["stratum"] == heavy, "N_h"
    ]
    out = compute_release(responses, frame)
    got = row(out.estimates, level="agency", agency="ODD", measure="index")
    assert got["n"] == 31 and got["suppressed"]
    tax = row(out.estimates, level="agency", agency="TAX", measure="index")
    assert not tax["suppressed"]


def test_every_level_equals_the_analysis_package(
    export: tuple[pd.DataFrame, pd.DataFrame], release: ReleaseTables
) -> None:
    """Province, agency x channel, service and item rows are the package's own numbers."""
    design, _ = calibrated_design(*export)
    est = release.estimates
    province = design.mean("index", by="_dom_province", dropna=True).set_index("_dom_province")
    got = row(est, level="province", province="THR", measure="index")
    assert got["estimate"] == pytest.approx(province.loc["THR", "estimate"], rel=1e-12)
    assert got["se"] == pytest.approx(province.loc["THR", "se"], rel=1e-12)
    channel = design.proportion("satisfied", by=["agency", "channel"], dropna=True)
    want = channel[(channel["agency"] == "EDU") & (channel["channel"] == "online")].iloc[0]
    got = row(est, level="agency_channel", agency="EDU", channel="online", measure="satisfied")
    assert got["ci_low"] == pytest.approx(100 * want["ci_low"], rel=1e-12)
    service = design.mean("index", by=["agency", "service"], dropna=True)
    want = service[service["service"] == "TAX-02"].iloc[0]
    got = row(est, level="service", agency="TAX", service="TAX-02", measure="index")
    assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-12)
    items = design.mean("score_q_ease", by="agency", dropna=True).set_index("agency")
    got = row(release.items, level="agency", agency="EDU", item="q_ease")
    assert got["estimate"] == pytest.approx(items.loc["EDU", "estimate"], rel=1e-12)


def test_level_sets_the_interval(export: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    wide = compute_release(*export, level=0.99).estimates
    narrow = compute_release(*export, level=0.90).estimates
    a = row(wide, level="agency", agency="TAX", measure="index")
    b = row(narrow, level="agency", agency="TAX", measure="index")
    assert a["estimate"] == pytest.approx(b["estimate"])
    assert (a["ci_high"] - a["ci_low"]) > (b["ci_high"] - b["ci_low"])
    with pytest.raises(ReleaseError, match="level"):
        compute_release(*export, level=95)


def test_numeric_codes_read_from_csv_match_across_the_two_files(
    export: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """Province codes 1..6: the frame-counts file has empty province cells on other margins,
    so pandas reads its province column as float (1.0) while the responses read int (1)."""
    responses, frame = export
    numbers = {p: i + 1 for i, p in enumerate(PROVINCES)}
    responses = responses.assign(province=responses["province"].map(numbers))
    frame = frame.assign(province=frame["province"].map(numbers))
    responses.to_csv(tmp_path / "r.csv", index=False)
    frame.to_csv(tmp_path / "f.csv", index=False)
    r, f = pd.read_csv(tmp_path / "r.csv"), pd.read_csv(tmp_path / "f.csv")
    assert f["province"].dtype == float and r["province"].dtype != float
    out = compute_release(r, f)
    assert "1" in set(out.estimates.loc[out.estimates["level"] == "province", "province"])


def test_a_previous_export_that_overlaps_the_current_one_is_refused(
    export: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The change assumes separate samples; the same period twice is not one."""
    with pytest.raises(ReleaseError, match="share 16 design strata"):
        compute_release(*export, previous=export)
