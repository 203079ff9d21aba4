"""What a correction changed: the estimates that differ between a release and its correction,
so the correction's note says it in numbers, not only in the staff's words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KEYS", "describe_changes", "estimate_changes"]

KEYS = ("level", "agency", "channel", "service", "province", "measure")
TOLERANCE = 1e-9
SHOWN = 40


def _estimates(tables_json: dict[str, Any]) -> pd.DataFrame:
    from analysis.release import ReleaseTables

    frame = ReleaseTables.from_json(tables_json).estimates.copy()
    for key in KEYS:
        frame[key] = frame[key].fillna("").astype(str)
    return frame.set_index(list(KEYS))[["estimate", "suppressed"]]


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def estimate_changes(
    old_tables: dict[str, Any], new_tables: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every domain x measure whose published estimate (or suppression) is not the same, and
    every domain that appears or disappears."""
    old, new = _estimates(old_tables), _estimates(new_tables)
    both = old.add_suffix("_old").join(new.add_suffix("_new"), how="outer")
    a = both["estimate_old"].astype("float64").to_numpy()
    b = both["estimate_new"].astype("float64").to_numpy()
    missing_a, missing_b = np.isnan(a), np.isnan(b)
    moved = np.where(missing_a | missing_b, missing_a != missing_b, np.abs(a - b) > TOLERANCE)
    flags = both[["suppressed_old", "suppressed_new"]].astype("object")
    suppression = (flags["suppressed_old"] != flags["suppressed_new"]).to_numpy()
    changed = both[moved | suppression]
    out: list[dict[str, Any]] = []
    for key, row in zip(changed.index, changed.itertuples(index=False), strict=True):
        entry = dict(zip(KEYS, key, strict=True))
        entry.update(
            before=_number(row.estimate_old),
            after=_number(row.estimate_new),
            suppressed_before=_flag(row.suppressed_old),
            suppressed_after=_flag(row.suppressed_new),
        )
        out.append(entry)
    return out


def _flag(value: Any) -> bool | None:
    """A suppression flag; None where the estimate is missing on that side."""
    return None if pd.isna(value) else bool(value)


def _domain(change: dict[str, Any]) -> str:
    keys = [f"{k}={change[k]}" for k in ("agency", "channel", "service", "province") if change[k]]
    return f"{change['level']} {' '.join(keys)} {change['measure']}".replace("  ", " ")


def _value(number: float | None, suppressed: bool | None) -> str:
    if suppressed is None and number is None:
        return "absent"
    if suppressed:
        return "suppressed"
    return "-" if number is None else f"{number:.1f}"


def describe_changes(changes: list[dict[str, Any]]) -> str:
    """The automatic part of a correction note (the full list is in the release's JSON)."""
    if not changes:
        return "Estimates that differ from the corrected release: none."
    lines = [f"Estimates that differ from the corrected release: {len(changes)}."]
    for change in changes[:SHOWN]:
        before = _value(change["before"], change["suppressed_before"])
        after = _value(change["after"], change["suppressed_after"])
        lines.append(f"- {_domain(change)}: {before} -> {after}")
    if len(changes) > SHOWN:
        lines.append(f"- ... and {len(changes) - SHOWN} more (listed in the release's JSON)")
    return "\n".join(lines)
