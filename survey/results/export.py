"""The export for analysis: one row per response with its design columns, weights, answers and
scores, plus the frame counts that weighting and calibration need. Every column is described
in docs/export.md; this is the one contract between the service and `analysis/`.

Design strata. Sampling is Poisson within the plan's strata, and the population total of a
stratum is known exactly for every day (FrameCount). The export's design stratum is the plan
stratum *within one period (Solar Hijri month of the transaction) and one plan version*:

    stratum = "<period>/v<plan version>/<plan stratum>"   e.g. 1404-12/v1/agency=TAX|service=...

    N_h            eligible transactions of the stratum on the exported days of that period
    n_sampled_h    of those, sampled (FrameCount.sampled)
    n_responding_h rows of this export in the stratum
    base_weight    1 / inclusion_probability
    weight         N_h / n_responding_h   (so weights sum to N_h within each stratum)

The nonresponse-adjusted weight conditions on the achieved sample (respondents stand for the
stratum's whole frame); R survey's `svydesign(ids=~1, strata=~stratum, fpc=~N_h)` gives the
same weights from `N_h` alone. Strata with sampled units but no respondents are absent from the
responses and present in the frame counts (n_responding 0): the analysis decides whether to
collapse them. A responding stratum without frame counts is an error, never a silent weight.

Privacy: no phone, no token, no internal id. `response_id` is an HMAC of the response id under
a key derived from the server secret: stable across exports, useless without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from questionnaires.schema import Questionnaire
from questionnaires.scoring import score
from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.ingestion.frames import frame_counts
from survey.kernel import audit
from survey.kernel.crypto import derive_key
from survey.kernel.periods import solar_month_of
from survey.kernel.principal import Principal
from survey.kernel.spreadsheet import csv_text
from survey.results import store

__all__ = [
    "DESIGN_COLUMNS",
    "FRAME_COLUMNS",
    "ExportError",
    "ExportResult",
    "export_responses",
    "pseudonymous_id",
    "record_export",
    "write_export",
]

DESIGN_COLUMNS: tuple[str, ...] = (
    "response_id",
    "status",
    "questionnaire",
    "questionnaire_version",
    "agency",
    "service",
    "channel",
    "province",
    "period",
    "plan_version",
    "plan_stratum",
    "stratum",
    "N_h",
    "n_sampled_h",
    "n_responding_h",
    "inclusion_probability",
    "base_weight",
    "weight",
    "mode",
)
FRAME_COLUMNS: tuple[str, ...] = (
    "margin",
    "period",
    "stratum",
    "plan_version",
    "plan_stratum",
    "agency",
    "province",
    "channel",
    "N",
    "n_sampled",
    "n_responding",
)
RESERVED = frozenset(DESIGN_COLUMNS) | {"index", "satisfied"}
MAX_DAYS = 3700


class ExportError(InvalidInput):
    """The export cannot be made as asked, or the stored data would give wrong weights."""


@dataclass(frozen=True)
class ExportResult:
    """The two tables of an export and the transaction days they cover (inclusive)."""

    start: date
    end: date
    include_partial: bool
    responses: pd.DataFrame
    frame_counts: pd.DataFrame


def pseudonymous_id(secret_key: bytes, response_id: int) -> str:
    """A stable, unlinkable id for a response (20 hex characters = 80 bits)."""
    key = derive_key(secret_key, "export-response-id")
    return hmac.new(key, f"response:{response_id}".encode(), hashlib.sha256).hexdigest()[:20]


def export_responses(
    context: AppContext, start: date, end: date, *, include_partial: bool = False
) -> ExportResult:
    """Responses to invitations whose transaction day is in `start`..`end` (inclusive)."""
    if start > end:
        raise ExportError(
            "the day range is reversed",
            [Problem(f"from {start} is after to {end}", field="from")],
        )
    if (end - start).days > MAX_DAYS:
        raise ExportError(
            "the day range is too long",
            [Problem(f"at most {MAX_DAYS} days; got {(end - start).days + 1}", field="to")],
        )
    with context.read_sessions() as session:
        rows = store.response_rows(session, start, end, include_partial=include_partial)
        frames = frame_counts(session, start=start, end=end, by=("plan", "stratum", "day"))
        by_province = frame_counts(session, start=start, end=end, by=("agency", "province", "day"))
        by_channel = frame_counts(session, start=start, end=end, by=("agency", "channel", "day"))
        contents = store.questionnaire_contents(
            session, {int(row.questionnaire_version_id) for row in rows}
        )
    questionnaires = {
        version_id: Questionnaire.from_dict(content, file=f"questionnaire_version {version_id}")
        for version_id, content in contents.items()
    }
    design = _design_frame(rows, context.settings.secret_key)
    strata = _strata_totals(frames)
    design = _attach_weights(design, strata)
    answers = _answer_columns(rows, design.index, questionnaires)
    responses = pd.concat([design[list(DESIGN_COLUMNS)], answers], axis=1)
    companion = _companion(strata, by_province, by_channel, design)
    return ExportResult(start, end, include_partial, responses, companion)


def write_export(result: ExportResult, out: str | Path) -> tuple[Path, Path]:
    """Write the responses CSV and beside it `<name>.frame_counts.csv` (UTF-8, no BOM)."""
    path = Path(out)
    if path.suffix.lower() != ".csv":
        raise ExportError(
            "the output file must be a .csv", [Problem(f"got {str(path)!r}", field="out")]
        )
    companion = path.with_name(path.stem + ".frame_counts.csv")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(responses_csv(result), encoding="utf-8")
        companion.write_text(frame_counts_csv(result), encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{path}: cannot be written ({exc.strerror})") from None
    return path, companion


def responses_csv(result: ExportResult) -> str:
    """The responses as CSV; free text that a spreadsheet would run is neutralised."""
    return csv_text(result.responses)


def frame_counts_csv(result: ExportResult) -> str:
    return csv_text(result.frame_counts)


def record_export(
    context: AppContext, principal: Principal, result: ExportResult, *, target: str
) -> None:
    """Audit who took which responses out of the service (data leaving is consequential)."""
    with context.sessions() as session, session.begin():
        audit.record(
            session,
            principal,
            "export.responses",
            "response",
            f"{result.start}..{result.end}",
            after={
                "rows": len(result.responses),
                "include_partial": result.include_partial,
                "target": target,
            },
        )


# -- building blocks ----------------------------------------------------------------------------
def _periods(days: pd.Series) -> pd.Series:
    """Solar Hijri month of each day (computed once per distinct day)."""
    labels = {day: solar_month_of(day) for day in days.unique()}
    return days.map(labels)


def _design_key(period: pd.Series, plan_version: pd.Series, plan_stratum: pd.Series) -> pd.Series:
    return period + "/v" + plan_version.astype(str) + "/" + plan_stratum


def _design_frame(rows: Sequence[Any], secret_key: bytes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "response_id": [pseudonymous_id(secret_key, int(r.id)) for r in rows],
            "status": [r.status for r in rows],
            "questionnaire": [r.qid for r in rows],
            "questionnaire_version": pd.array([r.questionnaire_version for r in rows], "Int64"),
            "agency": [r.agency for r in rows],
            "service": [r.service for r in rows],
            "channel": [r.channel for r in rows],
            "province": [r.province_code or "" for r in rows],
            "day": [r.day for r in rows],
            "plan_version": pd.array([r.plan_version for r in rows], "Int64"),
            "plan_stratum": [r.stratum for r in rows],
            "inclusion_probability": np.array(
                [r.inclusion_probability for r in rows], dtype="float64"
            ),
            "mode": [r.mode for r in rows],
        }
    )
    frame["period"] = _periods(frame["day"]) if len(frame) else pd.Series(dtype=str)
    frame["stratum"] = (
        _design_key(frame["period"], frame["plan_version"], frame["plan_stratum"])
        if len(frame)
        else pd.Series(dtype=str)
    )
    bad = ~((frame["inclusion_probability"] > 0) & (frame["inclusion_probability"] <= 1))
    if bool(bad.any()):
        raise ExportError(
            "stored inclusion probabilities must be in (0, 1]",
            [
                Problem(f"stratum {s}: inclusion probability {p}", field="inclusion_probability")
                for s, p in zip(
                    frame.loc[bad, "stratum"], frame.loc[bad, "inclusion_probability"], strict=True
                )
            ][:10],
        )
    return frame


def _strata_totals(frames: list[Any]) -> pd.DataFrame:
    """N_h and n_sampled_h per design stratum, from the per-day frame counts."""
    table = pd.DataFrame(
        {
            "plan_version": pd.array([int(f.group["plan"]) for f in frames], "Int64"),
            "plan_stratum": [str(f.group["stratum"]) for f in frames],
            "day": [date.fromisoformat(str(f.group["day"])) for f in frames],
            "N": np.array([f.eligible for f in frames], dtype="int64"),
            "n_sampled": np.array([f.sampled for f in frames], dtype="int64"),
        }
    )
    if table.empty:
        return table.assign(period=pd.Series(dtype=str), stratum=pd.Series(dtype=str))
    table["period"] = _periods(table["day"])
    grouped = table.groupby(["period", "plan_version", "plan_stratum"], as_index=False)[
        ["N", "n_sampled"]
    ].sum()
    grouped["stratum"] = _design_key(
        grouped["period"], grouped["plan_version"], grouped["plan_stratum"]
    )
    return grouped


def _attach_weights(design: pd.DataFrame, strata: pd.DataFrame) -> pd.DataFrame:
    counts = design.groupby("stratum").size().rename("n_responding_h")
    design = design.join(counts, on="stratum")
    totals = strata.set_index("stratum")[["N", "n_sampled"]] if len(strata) else None
    if totals is None:
        design["N_h"] = pd.Series(0, index=design.index, dtype="int64")
        design["n_sampled_h"] = pd.Series(0, index=design.index, dtype="int64")
    else:
        design["N_h"] = design["stratum"].map(totals["N"]).fillna(0).astype("int64")
        design["n_sampled_h"] = design["stratum"].map(totals["n_sampled"]).fillna(0).astype("int64")
    short = design["N_h"] < design["n_responding_h"]
    if bool(short.any()):
        cells = design.loc[short, ["stratum", "N_h", "n_responding_h"]].drop_duplicates()
        raise ExportError(
            "frame counts are missing or smaller than the respondents they must weight",
            [
                Problem(
                    f"{row.stratum}: N_h = {row.N_h} eligible but {row.n_responding_h} "
                    "responding (were frame counts lost or the plan changed?)",
                    field="stratum",
                )
                for row in cells.itertuples()
            ][:20],
        )
    design["n_responding_h"] = design["n_responding_h"].astype("int64")
    design["base_weight"] = 1.0 / design["inclusion_probability"]
    design["weight"] = design["N_h"] / design["n_responding_h"]
    return design


def _answer_columns(
    rows: Sequence[Any], index: pd.Index, questionnaires: dict[int, Questionnaire]
) -> pd.DataFrame:
    """Every item's answer by item id, the item scores, `index` and `satisfied`, per response."""
    item_ids: dict[str, None] = {}
    score_ids: dict[str, None] = {}
    parts: list[pd.DataFrame] = []
    version_of = np.array([int(r.questionnaire_version_id) for r in rows], dtype="int64")
    for version_id, questionnaire in questionnaires.items():
        positions = np.flatnonzero(version_of == version_id)
        ids = [item.id for item in questionnaire.items]
        clash = sorted(RESERVED.intersection(ids))
        if clash:
            raise ExportError(
                f"questionnaire {questionnaire.id} v{questionnaire.version} has items named "
                f"like design columns: {', '.join(clash)}; rename the items in a new version"
            )
        answers = pd.DataFrame(
            [dict(rows[int(p)].answers or {}) for p in positions], columns=ids, dtype=object
        )
        answers.index = index[positions]
        scores = score(questionnaire, answers)
        for item_id in ids:
            item_ids[item_id] = None
        for name in scores.columns:
            if name.startswith("score_"):
                score_ids[name] = None
        parts.append(pd.concat([answers, scores], axis=1))
    columns = [*item_ids, *score_ids, "index", "satisfied"]
    if not parts:
        return pd.DataFrame(columns=columns, index=index)
    combined = pd.concat(parts).reindex(index=index, columns=columns)
    combined["satisfied"] = combined["satisfied"].astype("Float64").astype("Int64")
    for name in [*score_ids, "index"]:
        combined[name] = combined[name].astype("float64")
    return combined


def _companion(
    strata: pd.DataFrame, by_province: list[Any], by_channel: list[Any], design: pd.DataFrame
) -> pd.DataFrame:
    """The calibration totals: N per design stratum, and per agency by province and by channel."""
    responding = design.groupby("stratum").size()
    stratum_rows = pd.DataFrame(
        {
            "margin": "stratum",
            "period": strata["period"],
            "stratum": strata["stratum"],
            "plan_version": strata["plan_version"],
            "plan_stratum": strata["plan_stratum"],
            "N": strata["N"],
            "n_sampled": strata["n_sampled"],
            "n_responding": strata["stratum"].map(responding).fillna(0).astype("int64"),
        }
    )
    margins = [stratum_rows]
    for name, totals in (("province", by_province), ("channel", by_channel)):
        table = pd.DataFrame(
            {
                "agency": [str(t.group["agency"]) for t in totals],
                name: [str(t.group[name]) for t in totals],
                "day": [date.fromisoformat(str(t.group["day"])) for t in totals],
                "N": np.array([t.eligible for t in totals], dtype="int64"),
                "n_sampled": np.array([t.sampled for t in totals], dtype="int64"),
            }
        )
        if table.empty:
            continue
        table["period"] = _periods(table["day"])
        summed = table.groupby(["period", "agency", name], as_index=False)[["N", "n_sampled"]].sum()
        got = design.groupby(["period", "agency", name]).size().rename("n_responding")
        summed = summed.join(got, on=["period", "agency", name])
        summed["n_responding"] = summed["n_responding"].fillna(0).astype("int64")
        summed["margin"] = f"agency_{name}"
        margins.append(summed)
    companion = pd.concat(margins, ignore_index=True).reindex(columns=list(FRAME_COLUMNS))
    companion["plan_version"] = companion["plan_version"].astype("Int64")
    return companion.sort_values(
        ["margin", "period", "stratum", "agency", "province", "channel"],
        na_position="first",
        kind="stable",
    ).reset_index(drop=True)
