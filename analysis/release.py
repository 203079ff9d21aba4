"""The numbers of a publication release, computed from one period's export.

``compute_release(responses, frame_counts, previous=None, drivers=None, level=0.95,
rules=QualityRules())`` returns :class:`ReleaseTables`: the satisfaction index and the share
satisfied per national, agency, agency x channel, service, province and agency x province
domain, with the change from the previous period (independent samples) and the difference
from the national or the agency's figure (the same sample: their joint covariance,
:func:`analysis.contrasts.compare_domains`); item scores and driver importance; Fay-Herriot
small-area estimates of agency x province cells; methodology notes. The interface is fixed
in the release contract (helpers/RELEASE_CONTRACT.md) and explained for readers in
docs/publication-methods.md.

The weighting (why each step):

1. design: stratified, every response its own PSU, weights ``weight``, strata ``stratum``,
   fpc ``N_h`` (the export's design, docs/export.md);
2. nonresponse: within each design stratum respondents stand for the stratum's frame count
   (the export's ``weight`` already is ``N_h / n_responding_h``; verified here, redone if
   not);
3. calibration: raking to the frame counts of agency x channel and agency x province (per
   period), so that every published domain adds up to the transactions it had; strata
   with no respondents are absorbed by their agency's cells. Cells with fewer than
   ``MIN_CALIBRATION_CELL`` respondents are pooled within their agency (tiny cells would
   give a few respondents enormous weights).

Every domain is estimated on the full design (``by=``), never on a subset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from analysis.contrasts import compare_domains, independent_difference
from analysis.design import SurveyDesign
from analysis.drivers import key_drivers
from analysis.errors import AnalysisError
from analysis.methodology import release_facts, summary_notes
from analysis.quality import SUPPRESSED, QualityRules, apply_rules
from analysis.ranks import rank_intervals
from analysis.sae import FayHerriotError, fay_herriot
from analysis.weighting.cells import cell_codes, targets_for
from analysis.weighting.rake import rake_weights

__all__ = [
    "ESTIMATE_COLUMNS",
    "IMPORTANCE_NOTES",
    "ITEM_COLUMNS",
    "LEVELS",
    "SMALL_AREA_COLUMNS",
    "QualityRules",
    "ReleaseError",
    "ReleaseTables",
    "calibrated_design",
    "compute_release",
    "published_figures",
]

LEVELS: dict[str, list[str]] = {
    "national": [],
    "agency": ["agency"],
    "agency_channel": ["agency", "channel"],
    "service": ["agency", "service"],
    "province": ["province"],
    "agency_province": ["agency", "province"],
}
KEYS = ["agency", "channel", "service", "province"]
MEASURES = ("index", "satisfied")
ESTIMATE_COLUMNS = [
    "level",
    *KEYS,
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "cv",
    "n",
    "n_sampled",
    "response_rate",
    "grade",
    "suppressed",
    "previous_estimate",
    "change",
    "change_ci_low",
    "change_ci_high",
    "change_significant",
    "compared_with",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "difference_significant",
    "rank",
    "rank_low",
    "rank_high",
]
ITEM_COLUMNS = [
    "level",
    "agency",
    "item",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "grade",
    "suppressed",
    "importance",
    "importance_low",
    "importance_high",
    "importance_note",
]
SMALL_AREA_COLUMNS = [
    "agency",
    "province",
    "direct",
    "direct_se",
    "n",
    "model",
    "model_rmse",
    "used",
]
_INT_COLUMNS = {"n", "n_sampled", "rank", "rank_low", "rank_high"}
_BOOL_COLUMNS = {"suppressed", "change_significant", "difference_significant"}
_TEXT_COLUMNS = {
    "level",
    *KEYS,
    "measure",
    "grade",
    "item",
    "importance_note",
    "used",
    "compared_with",
}
# the figure each level is compared with: its agency's, or the national one ([])
COMPARED_WITH: dict[str, list[str]] = {
    "agency": [],
    "agency_channel": ["agency"],
    "service": ["agency"],
    "province": [],
    "agency_province": ["agency"],
}

REQUIRED = ("agency", "service", "channel", "province", "period", "stratum", "weight", "N_h")
MIN_CALIBRATION_CELL = 20
# Up to this many calibration cells the variance accounts for the raking; beyond, the
# package's backfitting (dense cells x cells tables) gets slow, and the raked weights are
# treated as fixed.
MAX_LINEARISED_CELLS = 400
RANK_DRAWS = 10_000
RANK_SEED = 20_250_101
DRIVER_REPLICATES = 200
DRIVER_SEED = 0
_OTHER = "~other"
# importance_note texts (English; charts and pages translate them by these keys' values)
IMPORTANCE_NOTES = {
    "too_few_responses": "too few complete responses to rank the drivers",
    "collinear_drivers": "the drivers move together too closely to be told apart",
    "constant_driver": "the index or a driver does not vary",
}


class ReleaseError(AnalysisError, ValueError):
    """The export cannot be turned into a release (names the field, expected and got)."""


@dataclass(frozen=True)
class ReleaseTables:
    """The published tables of one release and the methodology facts behind them."""

    estimates: pd.DataFrame
    items: pd.DataFrame
    small_areas: pd.DataFrame
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (NaN -> None); :meth:`from_json` restores it."""
        return {
            "estimates": _records(self.estimates, ESTIMATE_COLUMNS),
            "items": _records(self.items, ITEM_COLUMNS),
            "small_areas": _records(self.small_areas, SMALL_AREA_COLUMNS),
            "notes": dict(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseTables:
        for name in ("estimates", "items", "small_areas", "notes"):
            if name not in data:
                raise ReleaseError(f"release tables: expected key {name!r}, missing")
        return cls(
            estimates=_frame(data["estimates"], ESTIMATE_COLUMNS),
            items=_frame(data["items"], ITEM_COLUMNS),
            small_areas=_frame(data["small_areas"], SMALL_AREA_COLUMNS),
            notes={str(k): str(v) for k, v in data["notes"].items()},
        )


def _records(table: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    out = []
    frame = table.reindex(columns=columns)
    for row in frame.astype(object).itertuples(index=False, name=None):
        out.append({c: _json_value(v) for c, v in zip(columns, row, strict=True)})
    return out


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _frame(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=columns) if records else None
    if frame is None:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return _typed(frame, columns)


def _typed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Fixed dtypes per column so tables compare equal after a JSON round trip."""
    out = frame.reindex(columns=columns).copy()
    for c in columns:
        if c in _INT_COLUMNS:
            # Any: pandas-stubs' pd.array takes no Series with an "Int64" dtype
            numeric: Any = pd.to_numeric(out[c], errors="coerce")
            out[c] = pd.array(numeric, dtype="Int64")
        elif c in _BOOL_COLUMNS:
            out[c] = out[c].fillna(False).astype(bool)
        elif c in _TEXT_COLUMNS:
            out[c] = out[c].fillna("").astype(str)
        else:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out.reset_index(drop=True)


# ---- inputs ----------------------------------------------------------------------------------
def _prepare(responses: pd.DataFrame, role: str) -> pd.DataFrame:
    if not isinstance(responses, pd.DataFrame):
        raise ReleaseError(f"{role}: expected a pandas DataFrame, got {type(responses).__name__}")
    missing = [c for c in (*REQUIRED, "index", "satisfied") if c not in responses.columns]
    if missing:
        raise ReleaseError(f"{role}: expected the export's columns, missing {missing}")
    df = responses.reset_index(drop=True).copy()
    for c in ("agency", "service", "channel", "province", "period", "stratum"):
        df[c] = _codes(df[c])
    for c in ("weight", "N_h", "index", "satisfied"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    bad = df["weight"].isna() | (df["weight"] < 0) | df["N_h"].isna()
    if bad.any():
        raise ReleaseError(
            f"{role}: {int(bad.sum())} rows have a missing or negative weight or N_h"
        )
    sat = df["satisfied"].dropna()
    if not sat.isin([0, 1]).all():
        raise ReleaseError(
            f"{role}: column 'satisfied' must be 0/1 or empty, got {sorted(set(sat) - {0, 1})[:3]}"
        )
    return df


def _codes(series: pd.Series) -> pd.Series:
    """Codes as text; missing (and the literal 'None'/'nan' a writer may leave) as ''.

    Cleaned once per distinct value (factorize), not once per row.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # a numeric code column read from CSV beside empty cells comes back as float: 23.0 -> 23
    labels = [
        str(int(u)) if isinstance(u, (float, np.floating)) and float(u).is_integer() else str(u)
        for u in uniques  # one per distinct code, not per row
    ]
    text = pd.Index(labels, dtype=object).str.strip()
    text = text.where(~text.isin(["None", "nan", "NaN", "<NA>"]), "")
    values = np.append(np.asarray(text, dtype=object), "")  # code -1 (missing) -> ''
    return pd.Series(values[codes], index=series.index, dtype=object)


def _frame_counts(frame_counts: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(frame_counts, pd.DataFrame):
        raise ReleaseError(
            f"frame_counts: expected a pandas DataFrame, got {type(frame_counts).__name__}"
        )
    missing = [c for c in ("margin", "period", "N", "n_sampled") if c not in frame_counts.columns]
    if missing:
        raise ReleaseError(
            f"frame_counts: expected the companion file's columns, missing {missing}"
        )
    fc = frame_counts.reset_index(drop=True).copy()
    for c in ("margin", "period", "stratum", "plan_stratum", "agency", "province", "channel"):
        fc[c] = _codes(fc[c]) if c in fc.columns else ""
    for c in ("N", "n_sampled", "n_responding"):
        fc[c] = pd.to_numeric(fc[c], errors="coerce").fillna(0) if c in fc.columns else 0
    return fc


def _plan_key(plan_stratum: pd.Series, key: str) -> pd.Series:
    """``service`` from ``agency=TAX|service=TAX-01|channel=in_person`` ('' when absent)."""
    found = plan_stratum.str.extract(rf"(?:^|\|){key}=([^|]*)", expand=False)
    return found.fillna("")


# ---- weighting -------------------------------------------------------------------------------
def _check_nonresponse(df: pd.DataFrame, notes: dict[str, str]) -> pd.DataFrame:
    """The weights must add to N_h in every stratum (weighting-class adjustment)."""
    sums = df.groupby("stratum")["weight"].transform("sum")
    n_h = df.groupby("stratum")["N_h"].transform("first")
    off = ~np.isclose(sums, n_h, rtol=1e-6)
    if off.any():
        df = df.copy()
        df["weight"] = np.where(sums > 0, df["weight"] * n_h / sums.where(sums > 0, 1.0), 0.0)
        notes["nonresponse"] = (
            f"The export's weights did not add up to the stratum frame counts in "
            f"{int(df.loc[off, 'stratum'].nunique())} strata; they were rescaled within each "
            "stratum to N_h (weighting-class nonresponse adjustment)."
        )
    else:
        notes["nonresponse"] = (
            "Nonresponse adjustment within design strata: every respondent stands for "
            "N_h / n_responding_h transactions (the export's weight; verified to add up to N_h "
            "in every stratum)."
        )
    return df


def _margin_cells(
    df: pd.DataFrame, fc: pd.DataFrame, name: str
) -> tuple[pd.Series, dict[str, float], int] | None:
    """Calibration cell of each row for margin ``agency_<name>`` and the cells' totals.

    Cells are (period, agency, level). Cells with fewer than ``MIN_CALIBRATION_CELL``
    respondents and cells with none are pooled per (period, agency); a pool with no
    respondents spreads its count over the agency's other cells in proportion to theirs.
    Returns None when the frame counts have no such margin.
    """
    rows = fc[fc["margin"] == f"agency_{name}"]
    if rows.empty:
        return None
    counts = rows.groupby(["period", "agency", name])["N"].sum()
    keys = pd.MultiIndex.from_frame(df[["period", "agency", name]])
    known = keys.isin(counts.index)
    if not known.all():
        first = df.loc[~known, ["period", "agency", name]].iloc[0].tolist()
        raise ReleaseError(
            f"frame_counts: no agency_{name} count for {int((~known).sum())} responses, "
            f"e.g. period/agency/{name} {first}; export the two files together"
        )
    respondents = df.groupby(["period", "agency", name]).size()
    table = counts.rename("N").reset_index()
    table["r"] = respondents.reindex(counts.index, fill_value=0).to_numpy()
    # only the (period, agency) groups that have responses are calibrated
    groups = pd.MultiIndex.from_frame(df[["period", "agency"]]).unique()
    table = table[pd.MultiIndex.from_frame(table[["period", "agency"]]).isin(groups)]
    small = table["r"] < MIN_CALIBRATION_CELL
    table["cell"] = np.where(small, _OTHER, table[name])
    pooled = table.groupby(["period", "agency", "cell"], as_index=False)[["N", "r"]].sum()
    # a pool without respondents: spread its count over the group's cells proportionally
    empty = pooled["r"] == 0
    if empty.any():
        lost = pooled[empty].groupby(["period", "agency"])["N"].sum().rename("lost")
        pooled = pooled[~empty].join(lost, on=["period", "agency"])
        group_n = pooled.groupby(["period", "agency"])["N"].transform("sum")
        pooled["N"] = pooled["N"] * (1 + pooled["lost"].fillna(0.0) / group_n)
    small_index = pd.MultiIndex.from_frame(table.loc[small, ["period", "agency", name]])
    level_of_row = df[name].where(~keys.isin(small_index), _OTHER)
    cell = df["period"] + "|" + df["agency"] + "|" + level_of_row
    targets = dict(
        zip(
            pooled["period"] + "|" + pooled["agency"] + "|" + pooled["cell"],
            pooled["N"].astype(float),
            strict=True,
        )
    )
    return cell, targets, int(small.sum())


def _fixed_raked_design(
    df: pd.DataFrame, design: SurveyDesign, margins: dict[str, dict[str, float]]
) -> SurveyDesign:
    """Raked weights as fixed weights of the export design (scales to thousands of cells)."""
    prepared = []
    for column, population in margins.items():
        codes, labels = cell_codes(df, [column], "rake")
        prepared.append((codes, targets_for(labels, population, [column], "rake")))
    raked, _ = rake_weights(design.weights[:, None], prepared, max_iter=100, tol=1e-10)
    return SurveyDesign(
        df.assign(_release_weight=raked[:, 0]),
        weights="_release_weight",
        strata="stratum",
        fpc="N_h",
        lonely_psu="adjust",
    )


def calibrated_design(
    responses: pd.DataFrame, frame_counts: pd.DataFrame
) -> tuple[SurveyDesign, dict[str, str]]:
    """The release's design: export design, nonresponse check, raking to the frame counts.

    Public so that anyone can reproduce a release's numbers with the analysis package
    (``calibrated_design(r, f)[0].mean("index", by="agency", dropna=True)``).
    """
    notes: dict[str, str] = {}
    df = _check_nonresponse(_prepare(responses, "responses"), notes)
    fc = _frame_counts(frame_counts)
    margins: dict[str, dict[str, float]] = {}
    pooled: list[str] = []
    for name in ("channel", "province"):
        made = _margin_cells(df, fc, name)
        if made is None:
            continue
        cell, targets, n_small = made
        column = f"_cal_{name}"
        df[column] = cell.to_numpy()
        margins[column] = targets
        if n_small:
            pooled.append(f"{n_small} agency x {name} cells")
    if len(margins) == 2:
        # the two margins must agree per (period, agency): scale province to channel totals
        def group_totals(t: dict[str, float]) -> pd.Series:
            s = pd.Series(t)
            return s.groupby(s.index.str.rsplit("|", n=1).str[0]).sum()

        ch, pr = (group_totals(margins[c]) for c in ("_cal_channel", "_cal_province"))
        factor = (ch / pr).to_dict()
        margins["_cal_province"] = {
            k: v * factor[k.rsplit("|", 1)[0]] for k, v in margins["_cal_province"].items()
        }
        if not np.allclose(ch.sort_index(), pr.sort_index(), rtol=1e-9):
            notes["calibration_consistency"] = (
                "The agency x province counts did not add up to the agency x channel counts "
                "for some agencies; province counts were scaled to the channel totals."
            )
    # responses without a reported province belong to no province domain
    df["_dom_province"] = df["province"].where(df["province"] != "")
    design = SurveyDesign(df, weights="weight", strata="stratum", fpc="N_h", lonely_psu="adjust")
    if margins:
        cells = sum(len(t) for t in margins.values())
        if cells <= MAX_LINEARISED_CELLS:
            design = design.rake(margins)
            variance = (
                "The variance accounts for the raking (Taylor linearisation with calibration "
                "residuals, as R survey's rake)."
            )
        else:
            design = _fixed_raked_design(df, design, margins)
            variance = (
                f"With {cells} calibration cells (more than {MAX_LINEARISED_CELLS}) the variance "
                "treats the raked weights as fixed, which leaves out the small variance "
                "reduction calibration brings (slightly conservative intervals)."
            )
        notes["calibration"] = (
            "Weights raked (iterative proportional fitting) to the frame counts of "
            + " and ".join(f"agency x {c[5:]}" for c in margins)
            + " in each period, so every agency's weights add up to its transactions by "
            "channel and by province. Strata without respondents are absorbed by their "
            "agency's cells."
            + (
                f" Cells with fewer than {MIN_CALIBRATION_CELL} respondents were pooled within "
                f"their agency: {', '.join(pooled)}."
                if pooled
                else ""
            )
            + " "
            + variance
        )
    else:
        notes["calibration"] = "No agency margins in the frame counts: no calibration."
    return design, notes


# ---- estimates -------------------------------------------------------------------------------
def _domain_estimates(design: SurveyDesign, level: float) -> pd.DataFrame:
    """Index and share satisfied for every level's domains (full design, by=)."""
    data = design.data
    has_province = data["province"] != ""
    tables = []
    for name, by in LEVELS.items():
        for measure in MEASURES:
            if data[measure].notna().sum() == 0:
                continue
            if "province" in by and not has_province.any():
                continue
            table = _estimate(design, measure, by, level)
            if table.empty:
                continue
            table.insert(0, "level", name)
            table.insert(1, "measure", measure)
            tables.append(table)
    if not tables:
        return pd.DataFrame(columns=["level", "measure", *KEYS])
    out = pd.concat(tables, ignore_index=True)
    for key in KEYS:
        out[key] = out[key].fillna("").astype(str) if key in out.columns else ""
    return out


def _estimate(design: SurveyDesign, measure: str, by: list[str], level: float) -> pd.DataFrame:
    statistic = "mean" if measure == "index" else "proportion"
    return _figures(design, statistic, measure, by, level)


def _figures(
    design: SurveyDesign, statistic: str, variable: str, by: list[str], level: float
) -> pd.DataFrame:
    """One level's figures as the release computes them: publication intervals over the
    responses with a value, proportions in percent, Kish's effective size for the rules."""
    by_arg: str | list[str] | None = by or None
    if "province" in by:
        # responses without a reported province belong to no province domain
        by_arg = [f"_dom_{c}" if c == "province" else c for c in by]
    if statistic == "mean":
        table = design.mean(variable, by=by_arg, dropna=True, level=level)
    else:
        table = design.proportion(variable, by=by_arg, dropna=True, level=level)
        for c in ("estimate", "se", "ci_low", "ci_high"):
            table[c] = table[c] * 100
    table = table.rename(columns={"_dom_province": "province"})
    table["n_eff"] = _kish(design, variable, by_arg, table, by)
    return table[[*by, "estimate", "se", "ci_low", "ci_high", "df", "cv", "n", "n_eff"]]


def published_figures(
    design: SurveyDesign,
    statistic: str,
    variable: str,
    by: str | Sequence[str] | None = None,
    *,
    level: float = 0.95,
    rules: QualityRules | None = None,
) -> pd.DataFrame:
    """A release's figures for any variable and domains: ``statistic`` ``"mean"`` or
    ``"proportion"`` (in percent) on :func:`calibrated_design`'s design, with the release's
    intervals, grades and suppression (suppressed rows keep ``n`` and lose their numbers).

    ``published_figures(design, "mean", "index", "agency")`` equals the agency rows of the
    release's estimates; ``python -m analysis estimate --frame-counts`` prints it.
    """
    if statistic not in ("mean", "proportion"):
        raise ReleaseError(f"statistic: expected 'mean' or 'proportion', got {statistic!r}")
    if not 0 < level < 1:
        raise ReleaseError(f"level: expected a number between 0 and 1, got {level!r}")
    columns = [] if by is None else ([by] if isinstance(by, str) else list(by))
    table = _figures(design, statistic, variable, columns, level)
    table = apply_rules(table, rules or QualityRules())
    return table.drop(columns="n_eff").reset_index(drop=True)


def _kish(
    design: SurveyDesign,
    variable: str,
    by_arg: str | list[str] | None,
    table: pd.DataFrame,
    by: list[str],
) -> np.ndarray:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` per domain, over the responses
    with a value: unequal weights make a few responses stand for many (Kish 1965)."""
    data = design.data
    valid = pd.to_numeric(data[variable], errors="coerce").notna().to_numpy()
    w = np.where(valid, design.weights, 0.0)
    frame = pd.DataFrame({"w": w, "w2": w * w})
    if by_arg is None:
        sums = frame.sum()
        return np.repeat(sums["w"] ** 2 / sums["w2"] if sums["w2"] > 0 else 0.0, len(table))
    columns = [by_arg] if isinstance(by_arg, str) else list(by_arg)
    frame[columns] = data[columns]
    by_domain = frame.groupby(columns, dropna=True)[["w", "w2"]].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        kish = (by_domain["w"] ** 2 / by_domain["w2"]).where(by_domain["w2"] > 0, 0.0)
    kish.index = kish.index.set_names(by)
    keys = pd.MultiIndex.from_frame(table[by]) if len(by) > 1 else pd.Index(table[by[0]])
    return kish.reindex(keys).fillna(0.0).to_numpy()


def _sampled_by(frame: pd.DataFrame, keys: str | list[str]) -> pd.DataFrame:
    """``n_sampled`` summed per ``keys``, with the keys as columns (``as_index=False`` gives
    a DataFrame; pandas-stubs types it as a Series)."""
    return cast(pd.DataFrame, frame.groupby(keys, as_index=False)["n_sampled"].sum())


def _sampled(df: pd.DataFrame, fc: pd.DataFrame) -> pd.DataFrame:
    """Responses and sampled units per domain (from the frame counts) for response rates."""
    strata = fc[fc["margin"] == "stratum"].copy()
    if "plan_stratum" in strata.columns:
        strata["agency"] = _plan_key(strata["plan_stratum"], "agency")
        strata["service"] = _plan_key(strata["plan_stratum"], "service")
    rows: list[dict[Hashable, Any]] = []
    rows.append({"level": "national", "n_sampled": strata["n_sampled"].sum()})
    for name, margin in (("agency_channel", "channel"), ("agency_province", "province")):
        part = fc[fc["margin"] == name]
        if part.empty:
            continue
        g = _sampled_by(part, ["agency", margin])
        g["level"] = name
        rows.extend(g.to_dict("records"))
        if name == "agency_channel":
            a = _sampled_by(part, "agency")
            a["level"] = "agency"
            rows.extend(a.to_dict("records"))
        else:
            p = _sampled_by(part, "province")
            p["level"] = "province"
            rows.extend(p.to_dict("records"))
    with_service = strata[strata.get("service", pd.Series("", index=strata.index)) != ""]
    if not with_service.empty:
        s = _sampled_by(with_service, ["agency", "service"])
        s["level"] = "service"
        rows.extend(s.to_dict("records"))
    sampled = pd.DataFrame(rows)
    for key in KEYS:
        sampled[key] = sampled[key].fillna("").astype(str) if key in sampled.columns else ""
    responding = []
    for name, by in LEVELS.items():
        if by:
            g = df.groupby(by).size().rename("responses").reset_index()
        else:
            g = pd.DataFrame({"responses": [len(df)]})
        g["level"] = name
        responding.append(g)
    resp = pd.concat(responding, ignore_index=True)
    for key in KEYS:
        resp[key] = resp[key].fillna("").astype(str) if key in resp.columns else ""
    return sampled.merge(resp, on=["level", *KEYS], how="outer")


# ---- change from the previous period ---------------------------------------------------------
def _change(current: pd.DataFrame, previous: pd.DataFrame | None, level: float) -> pd.DataFrame:
    """The previous period's sample was drawn afresh (its own strata, its own draw), so the
    two estimates are independent: se = sqrt(se1^2 + se0^2), Welch-Satterthwaite df."""
    out = current.copy()
    for c in ("previous_estimate", "change", "change_ci_low", "change_ci_high"):
        out[c] = np.nan
    out["change_significant"] = False
    if previous is None or previous.empty:
        return out
    keys = ["level", *KEYS, "measure"]
    prev = previous[[*keys, "estimate", "se", "df", "suppressed"]].rename(
        columns={"estimate": "p_est", "se": "p_se", "df": "p_df", "suppressed": "p_sup"}
    )
    merged = out[keys].merge(prev, on=keys, how="left")
    usable = (~out["suppressed"].to_numpy()) & (merged["p_sup"].to_numpy() == False)  # noqa: E712
    def column(frame: pd.DataFrame, name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=float)

    change, se, _, low, high = independent_difference(
        column(out, "estimate"),
        column(out, "se"),
        column(out, "df"),
        column(merged, "p_est"),
        column(merged, "p_se"),
        column(merged, "p_df"),
        level=level,
    )
    usable &= np.isfinite(change) & np.isfinite(se)
    est0 = merged["p_est"].to_numpy(dtype=float)
    out["previous_estimate"] = np.where(merged["p_sup"].to_numpy() == False, est0, np.nan)  # noqa: E712
    out["change"] = np.where(usable, change, np.nan)
    out["change_ci_low"] = np.where(usable, low, np.nan)
    out["change_ci_high"] = np.where(usable, high, np.nan)
    out["change_significant"] = usable & ((low > 0) | (high < 0))
    return out


def _check_separate_samples(current: SurveyDesign, previous: SurveyDesign) -> None:
    """The change treats the two periods as independent samples, which holds because each
    period's strata are its own; exports that share a design stratum overlap, and the
    change would need their covariance."""
    shared = set(current.data["stratum"]) & set(previous.data["stratum"])
    if shared:
        raise ReleaseError(
            f"previous: the two exports share {len(shared)} design strata (e.g. "
            f"{sorted(shared)[0]!r}), so they are not separate samples; export the previous "
            "period's own days"
        )


# ---- each domain against the national figure or its agency's ---------------------------------
def _comparisons(design: SurveyDesign, table: pd.DataFrame, level: float) -> pd.DataFrame:
    """Each domain's difference from the figure of the domain containing it (its agency, or
    the nation), with an interval from the *joint* covariance of the two estimates.

    Both come from the same responses -- the agency's are part of the national ones, a
    province's share strata with every agency -- so they are not independent:
    ``sqrt(se1^2 + se2^2)`` would overstate the error (analysis.contrasts.compare_domains).
    Given only where both figures are published."""
    out = table.copy()
    out["compared_with"] = ""
    for c in ("difference", "difference_ci_low", "difference_ci_high"):
        out[c] = np.nan
    out["difference_significant"] = False
    if table.empty:
        return out
    published = _published_keys(table)
    for name, within in COMPARED_WITH.items():
        by = LEVELS[name]
        for measure in MEASURES:
            pick = ((out["level"] == name) & (out["measure"] == measure)).to_numpy()
            if not pick.any() or not np.isfinite(out.loc[pick, "estimate"]).any():
                continue
            compared = _compare(design, measure, by, within, level)
            reference = "agency" if within else "national"
            rows = out.loc[pick, [*KEYS]].reset_index()
            found = rows.merge(compared, on=by, how="left").set_index("index")
            parent_ok = _reference_published(rows, published, reference, measure)
            usable = (
                parent_ok
                & ~out.loc[pick, "suppressed"].to_numpy(dtype=bool)
                & np.isfinite(found["difference"].to_numpy(dtype=float))
                & np.isfinite(found["se"].to_numpy(dtype=float))
            )
            low = found["ci_low"].to_numpy(dtype=float)
            high = found["ci_high"].to_numpy(dtype=float)
            out.loc[pick, "compared_with"] = np.where(usable, reference, "")
            out.loc[pick, "difference"] = np.where(usable, found["difference"], np.nan)
            out.loc[pick, "difference_ci_low"] = np.where(usable, low, np.nan)
            out.loc[pick, "difference_ci_high"] = np.where(usable, high, np.nan)
            out.loc[pick, "difference_significant"] = usable & ((low > 0) | (high < 0))
    return out


def _compare(
    design: SurveyDesign, measure: str, by: list[str], within: list[str], level: float
) -> pd.DataFrame:
    """compare_domains for one level and measure, keyed like the release's tables."""
    by_arg = [f"_dom_{c}" if c == "province" else c for c in by]
    statistic = "mean" if measure == "index" else "proportion"
    found = compare_domains(
        design, statistic, measure, by_arg, within=within or None, dropna=True, level=level
    )
    found = found.rename(columns={"_dom_province": "province"})
    scale = 100.0 if measure == "satisfied" else 1.0
    for c in ("difference", "se", "ci_low", "ci_high"):
        found[c] = found[c] * scale
    for c in by:
        found[c] = found[c].astype(str)
    return found[[*by, "difference", "se", "ci_low", "ci_high"]]


def _published_keys(table: pd.DataFrame) -> dict[tuple[str, str, str], bool]:
    """Whether the national and each agency's figure of a measure is published."""
    rows = table[table["level"].isin(["national", "agency"])]
    return {
        (str(level), str(agency), str(measure)): not bool(suppressed)
        for level, agency, measure, suppressed in zip(
            rows["level"], rows["agency"], rows["measure"], rows["suppressed"], strict=True
        )
    }


def _reference_published(
    rows: pd.DataFrame, published: dict[tuple[str, str, str], bool], reference: str, measure: str
) -> np.ndarray:
    if reference == "national":
        return np.full(len(rows), published.get(("national", "", measure), False))
    return np.array(
        [published.get(("agency", str(a), measure), False) for a in rows["agency"]], dtype=bool
    )


def _ranks(table: pd.DataFrame, level: float) -> pd.DataFrame:
    out = table.copy()
    for c in ("rank", "rank_low", "rank_high"):
        out[c] = pd.array([pd.NA] * len(out), dtype="Int64")
    for measure in MEASURES:
        pick = (out["level"] == "agency") & (out["measure"] == measure) & ~out["suppressed"]
        if not pick.any():
            continue
        part = out[pick]
        ranked = rank_intervals(
            part["estimate"],
            part["se"],
            part["df"],
            level=level,
            draws=RANK_DRAWS,
            seed=RANK_SEED,
        )
        for c in ("rank", "rank_low", "rank_high"):
            out.loc[pick, c] = ranked[c].to_numpy()
    return out


# ---- items and drivers -----------------------------------------------------------------------
def _items(
    design: SurveyDesign, drivers: Sequence[str], level: float, rules: QualityRules
) -> tuple[pd.DataFrame, str]:
    data = design.data
    columns = [f"score_{d}" for d in drivers]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ReleaseError(f"drivers: the responses have no columns {missing}")
    tables = []
    for name, by in (("national", None), ("agency", "agency")):
        for item, column in zip(drivers, columns, strict=True):
            if pd.to_numeric(data[column], errors="coerce").notna().sum() == 0:
                continue
            t = design.mean(column, by=by, dropna=True, level=level)
            t["n_eff"] = _kish(design, column, by, t, [by] if by else [])
            t["level"] = name
            t["item"] = item
            if by is None:
                t["agency"] = ""
            tables.append(t)
    if not tables:
        return _typed(pd.DataFrame(columns=ITEM_COLUMNS), ITEM_COLUMNS), "no item scores"
    items = apply_rules(pd.concat(tables, ignore_index=True), rules)
    items["agency"] = items["agency"].fillna("").astype(str)
    importance, note = _importance(design, drivers, columns, level)
    items = items.merge(importance, on=["level", "agency", "item"], how="left")
    items["importance_note"] = items["importance_note"].fillna(note or "")
    return _typed(items, ITEM_COLUMNS), note


def _importance(
    design: SurveyDesign, drivers: Sequence[str], columns: list[str], level: float
) -> tuple[pd.DataFrame, str]:
    empty = pd.DataFrame(
        columns=[
            "level",
            "agency",
            "item",
            "importance",
            "importance_low",
            "importance_high",
            "importance_note",
        ]
    )
    if len(columns) < 2:
        return empty, "importance needs at least two driver items"
    # Replicates rescale the calibrated weights without redoing the raking (a bootstrap
    # replicate can empty a small calibration cell); this ignores the small variance gain
    # of calibration, so the importance intervals are if anything a little wide.
    data = design.data.assign(_release_weight=design.weights)
    fixed = SurveyDesign(
        data, weights="_release_weight", strata="stratum", fpc="N_h", lonely_psu="adjust"
    )
    try:
        table = key_drivers(
            fixed,
            "index",
            columns,
            by="agency",
            replicates=DRIVER_REPLICATES,
            seed=DRIVER_SEED,
            level=level,
        )
    except AnalysisError as exc:
        return empty, f"importance not estimated: {exc}"
    out = pd.DataFrame(
        {
            "level": np.where(table["scope"] == "national", "national", "agency"),
            "agency": table["agency"].astype(object).where(table["scope"] != "national", ""),
            "item": table["driver"].str.removeprefix("score_"),
            "importance": table["importance"],
            "importance_low": table["ci_low"],
            "importance_high": table["ci_high"],
            "importance_note": [
                IMPORTANCE_NOTES.get(str(n).split(":", 1)[0], str(n)) if n else ""
                for n in table["note"]
            ],
        }
    )
    out["agency"] = out["agency"].fillna("").astype(str)
    return out, ""


# ---- small areas -----------------------------------------------------------------------------
def _small_areas(
    estimates: pd.DataFrame, fc: pd.DataFrame, notes: dict[str, str], rules: QualityRules
) -> pd.DataFrame:
    """Fay-Herriot EBLUPs of the agency x province index, used where the direct one fails."""
    empty = _typed(pd.DataFrame(columns=SMALL_AREA_COLUMNS), SMALL_AREA_COLUMNS)
    cells = fc[fc["margin"] == "agency_province"]
    direct_rows = estimates[
        (estimates["level"] == "agency_province") & (estimates["measure"] == "index")
    ]
    agency_rows = estimates[(estimates["level"] == "agency") & (estimates["measure"] == "index")]
    if cells.empty or direct_rows.empty:
        notes["small_areas"] = "No agency x province cells: no small-area estimates."
        return empty
    frame = cells.groupby(["agency", "province"], as_index=False)["N"].sum()
    frame = frame[(frame["province"] != "") & frame["agency"].isin(agency_rows["agency"])]
    raw = _raw_agency_province(estimates)
    frame = frame.merge(raw, on=["agency", "province"], how="left")
    frame["n"] = frame["n"].fillna(0)
    # the agency's own direct index (also when suppressed for publication) as auxiliary
    frame["agency_index"] = frame["agency"].map(_raw_agency(estimates))
    keep = frame["agency_index"].notna() & (frame["N"] > 0)
    frame = frame[keep].reset_index(drop=True)
    agency_index = frame["agency_index"]
    if frame.empty:
        notes["small_areas"] = "No agency x province cells with an agency estimate."
        return empty
    # sampling variances smoothed as k / n (a generalised variance function): direct
    # variances from a handful of responses are themselves too noisy to weigh by
    has = (frame["n"] >= 2) & frame["raw_estimate"].notna()
    # k from the cells whose own variance is usable; every cell with two or more responses
    # (also one whose answers happen to agree, se = 0) then gets k / n
    usable = has & frame["raw_se"].gt(0)
    k = (
        float(np.median(frame.loc[usable, "raw_se"] ** 2 * frame.loc[usable, "n"]))
        if usable.any()
        else np.nan
    )
    direct = frame["raw_estimate"].where(has)
    psi = k / frame["n"].where(has)
    X = pd.DataFrame(
        {"agency_index": agency_index.to_numpy(), "log_N": np.log(frame["N"].to_numpy())}
    )
    ok = frame["passes"].fillna(False).astype(bool).to_numpy()
    try:
        fit = fay_herriot(direct, psi, X, method="REML", direct_ok=ok)
    except FayHerriotError as exc:
        notes["small_areas"] = f"Fay-Herriot model not fitted ({exc}); only direct estimates."
        return empty
    table = fit.table
    model = table["eblup"].to_numpy(dtype=float)
    rmse = np.sqrt(table["mse"].to_numpy(dtype=float))
    # a model figure is published only if it is precise enough and its agency's own index
    # is published (the agency's index is the main auxiliary: a cell estimate built on a
    # suppressed agency figure would publish that figure in disguise)
    agency_published = frame["agency"].map(_published_agency(estimates)).fillna(False)
    with np.errstate(divide="ignore", invalid="ignore"):
        model_cv = rmse / np.abs(model)
    model_ok = (
        np.isfinite(model)
        & (model_cv <= rules.max_cv)
        & agency_published.to_numpy(dtype=bool)
        & ~ok
    )
    used = np.where(ok, "direct", np.where(model_ok, "model", "none"))
    out = pd.DataFrame(
        {
            "agency": frame["agency"],
            "province": frame["province"],
            "direct": frame["raw_estimate"].where(ok),
            "direct_se": frame["raw_se"].where(ok),
            "n": frame["n"].astype(int),
            "model": np.where(used == "none", np.nan, model),
            "model_rmse": np.where(used == "none", np.nan, rmse),
            "used": used,
        }
    )
    notes["small_areas"] = (
        "Agency x province cells: Fay-Herriot area-level model (REML; Prasad-Rao MSE) with "
        "the agency's direct index and the log of the cell's frame count as auxiliaries, "
        "sampling variances smoothed as k/n (k = median of se^2 n over cells with two or "
        f"more responses); sigma2_u = {fit.sigma2_u:.3g}. The model-based estimate is used "
        "only where the direct estimate fails the quality rule, and is labelled so; it is "
        f"itself published only when its relative root MSE is at most {rules.max_cv:.1%} and "
        "the agency's own index is published (used = 'none' otherwise: too few responses)."
        + (
            " The model found no variation between cells beyond the auxiliaries "
            "(sigma2_u = 0): model figures are then regression (synthetic) estimates."
            if fit.sigma2_u <= 0
            else ""
        )
    )
    return _typed(out, SMALL_AREA_COLUMNS)


def _raw_agency_province(estimates: pd.DataFrame) -> pd.DataFrame:
    rows = estimates[(estimates["level"] == "agency_province") & (estimates["measure"] == "index")]
    return pd.DataFrame(
        {
            "agency": rows["agency"],
            "province": rows["province"],
            "raw_estimate": rows["raw_estimate"],
            "raw_se": rows["raw_se"],
            "n": rows["n"],
            "passes": ~rows["suppressed"],
        }
    )


def _published_agency(estimates: pd.DataFrame) -> dict[str, bool]:
    rows = estimates[(estimates["level"] == "agency") & (estimates["measure"] == "index")]
    return dict(zip(rows["agency"], ~rows["suppressed"].astype(bool), strict=True))


def _raw_agency(estimates: pd.DataFrame) -> dict[str, float]:
    rows = estimates[(estimates["level"] == "agency") & (estimates["measure"] == "index")]
    return dict(zip(rows["agency"], rows["raw_estimate"], strict=True))


# ---- the release -----------------------------------------------------------------------------
def _estimates(
    design: SurveyDesign, fc: pd.DataFrame, level: float, rules: QualityRules
) -> pd.DataFrame:
    data = design.data
    table = _domain_estimates(design, level)
    if table.empty:
        return table
    table["raw_estimate"] = table["estimate"]
    table["raw_se"] = table["se"]
    table = apply_rules(table, rules)
    counts = _sampled(data, fc)
    table = table.merge(counts, on=["level", *KEYS], how="left")
    # domains that were sampled but gave no response are listed too ("too few responses")
    silent = counts[(counts["n_sampled"] > 0) & counts["responses"].fillna(0).eq(0)]
    silent = silent[
        ~(silent["level"].isin(["province", "agency_province"]) & (silent["province"] == ""))
    ]
    if not silent.empty:
        measures = pd.DataFrame({"measure": table["measure"].unique()})
        extra = silent.merge(measures, how="cross").assign(
            n=0, grade=SUPPRESSED, suppressed=True, responses=0
        )
        table = pd.concat([table, extra], ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = table["responses"] / table["n_sampled"]
    table["response_rate"] = rate.where(table["n_sampled"] > 0)
    return table


def compute_release(
    responses: pd.DataFrame,
    frame_counts: pd.DataFrame,
    previous: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    drivers: Sequence[str] | None = None,
    level: float = 0.95,
    rules: QualityRules | None = None,
) -> ReleaseTables:
    """All published numbers of one period (see the module docstring and the contract)."""
    rules = rules or QualityRules()
    if not 0 < level < 1:
        raise ReleaseError(f"level: expected a number between 0 and 1, got {level!r}")
    if len(responses) == 0:
        raise ReleaseError("responses: expected at least one response, got an empty table")
    design, notes = calibrated_design(responses, frame_counts)
    fc = _frame_counts(frame_counts)
    table = _estimates(design, fc, level, rules)
    prev_table = None
    if previous is not None:
        if not (isinstance(previous, tuple) and len(previous) == 2):
            raise ReleaseError("previous: expected a (responses, frame_counts) pair")
        if len(previous[0]) == 0:
            notes["previous"] = "The previous period had no responses: no changes."
        else:
            try:
                prev_design, _ = calibrated_design(previous[0], previous[1])
            except ReleaseError as exc:
                raise ReleaseError(f"previous period: {exc}") from None
            _check_separate_samples(design, prev_design)
            prev_table = _estimates(prev_design, _frame_counts(previous[1]), level, rules)
    table = _change(table, prev_table, level)
    table = _comparisons(design, table, level)
    table = _ranks(table, level)
    small = _small_areas(table, fc, notes, rules)
    items = _typed(pd.DataFrame(columns=ITEM_COLUMNS), ITEM_COLUMNS)
    if drivers:
        items, note = _items(design, list(drivers), level, rules)
        if note:
            notes["drivers"] = note
    notes.update(_method_notes(design, level, rules, prev_table is not None))
    facts = release_facts(
        design.data,
        level,
        rules,
        has_previous=prev_table is not None,
        small_areas=not small.empty,
        drivers=bool(drivers),
        rank_draws=RANK_DRAWS,
    )
    notes.update(summary_notes(facts))  # the short note in Persian and English
    order = {name: i for i, name in enumerate(LEVELS)}
    table = table.assign(_order=table["level"].map(order)).sort_values(
        ["_order", "measure", *KEYS], kind="stable"
    )
    estimates = _typed(table, ESTIMATE_COLUMNS)
    return ReleaseTables(estimates=estimates, items=items, small_areas=small, notes=notes)


def _method_notes(
    design: SurveyDesign, level: float, rules: QualityRules, has_previous: bool
) -> dict[str, str]:
    data = design.data
    notes = {
        "design": (
            "Stratified design, every response its own unit, strata = design strata of the "
            "sampling plan, finite population correction from the frame counts (N_h); "
            f"{len(data)} responses in {data['stratum'].nunique()} strata; "
            f"{design.degrees_of_freedom} design degrees of freedom. A stratum with a "
            "single response is centred on the grand mean (R survey's lonely.psu='adjust')."
        ),
        "level": f"{level:.0%}",
        "interval_index": (
            "Index: estimate +- t * se, Taylor linearisation (see calibration), Satterthwaite "
            "degrees of freedom capped by the domain's own responses minus strata."
        ),
        "interval_satisfied": (
            "Share satisfied: Korn-Graubard (Clopper-Pearson on the effective sample size, "
            "design effect floored at 1), as the NCHS standard."
        ),
        "quality": rules.describe(),
        "rules": json.dumps(rules.to_dict()),
        "ranks": (
            f"Agency ranks among the agencies not suppressed; rank interval: central {level:.0%} "
            f"of ranks over {RANK_DRAWS} draws from each estimate's sampling distribution "
            f"(Student t with its degrees of freedom), seed {RANK_SEED}."
        ),
        "response_rate": "Responses divided by sampled units in the domain (frame counts).",
    }
    notes["change"] = (
        "Change from the previous period: difference of the two estimates; the periods' "
        "samples are drawn separately (their own strata, a fresh draw), so the two estimates "
        "are independent (se = sqrt(se1^2 + se2^2)); Welch-Satterthwaite t interval; "
        "significant only when the interval excludes 0; not given when either estimate is "
        "suppressed."
        if has_previous
        else "No previous period given: no changes."
    )
    notes["comparison"] = (
        "Difference from the national figure (agency, province) or from the agency's own "
        "figure (agency x channel, service, agency x province): both come from the same "
        "responses, so the standard error of the difference uses their covariance (Taylor "
        "linearisation of the difference, with the calibration), not sqrt(se1^2 + se2^2); "
        "t interval with the smaller of the two estimates' degrees of freedom (and the "
        "difference's own Satterthwaite df if smaller); significant only when the interval "
        "excludes 0; not given when either figure is suppressed."
    )
    if "questionnaire" in data.columns and data["questionnaire"].nunique() > 1:
        notes["questionnaires"] = (
            "The responses come from several questionnaires; their indices are pooled."
        )
    return notes
