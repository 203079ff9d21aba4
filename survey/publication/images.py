"""Chart images of a release: drawn by the analysis package, encoded once, kept per app.

Names (with `.png` or `.svg`): `forest-<lang>` (agencies with intervals),
`trend-<agency>-<lang>` (the agency over the published periods, interval band),
`drivers-<agency>-<lang>` (driver importance beside score) and `quadrant-<agency>-<lang>`
(importance x performance). A published release never changes, so each image is drawn once per
release, name and format and served from memory afterwards (a bounded LRU of encoded bytes).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.charts import ChartError
from survey.errors import NotFound

if TYPE_CHECKING:  # the charts module imports matplotlib: only when a chart is drawn
    from survey.publication.charts import Format, Lang

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
# agency codes are survey.registry.agencies.CODE_PATTERN (GAS-ISF, MUN-TEH: hyphens too)
_NAME = re.compile(
    r"^(forest|(?:trend|drivers|quadrant)-[A-Za-z0-9][A-Za-z0-9._-]*)-(fa|en)\.(png|svg)$"
)
_CACHE_SIZE = 256


def parse_name(name: str) -> tuple[str, str]:
    """`trend-TAX-fa.svg` -> (`trend-TAX-fa`, `svg`); NotFound for anything else."""
    match = _NAME.match(name)
    if not match:
        raise NotFound(
            f"chart {name!r} does not exist (charts: forest-<lang>, trend-<agency>-<lang>, "
            "drivers-<agency>-<lang>, quadrant-<agency>-<lang>; lang fa or en; .png or .svg)"
        )
    return f"{match[1]}-{match[2]}", match[3]


def _lang(text: str) -> Lang:
    if text == "fa":
        return "fa"
    if text == "en":
        return "en"
    raise ChartError(f"lang: expected 'fa' or 'en', got {text!r}")


def _format(text: str) -> Format:
    if text == "png":
        return "png"
    if text == "svg":
        return "svg"
    raise ChartError(f"format: expected 'png' or 'svg', got {text!r}")


def _drivers_table(release: Any, agency: str) -> pd.DataFrame:
    """The agency's items in the layout analysis.charts.importance_performance reads."""
    items = release.tables.items
    rows = items[(items["level"] == "agency") & (items["agency"].astype(str) == agency)]
    if rows.empty:
        raise NotFound(f"agency {agency!r} has no driver scores in release {release.id}")
    return pd.DataFrame(
        {
            "driver": rows["item"].astype(str).to_numpy(),
            "importance": pd.to_numeric(rows["importance"], errors="coerce").to_numpy(),
            "ci_low": pd.to_numeric(rows["importance_low"], errors="coerce").to_numpy(),
            "ci_high": pd.to_numeric(rows["importance_high"], errors="coerce").to_numpy(),
            "performance": pd.to_numeric(rows["estimate"], errors="coerce").to_numpy(),
            "note": rows["importance_note"].fillna("").astype(str).to_numpy(),
        }
    )


def quadrant_drawable(table: pd.DataFrame) -> bool:
    """Whether the importance x performance chart has points: at least two drivers, each
    with an importance and a published score."""
    values = table[["importance", "performance"]].to_numpy(dtype=float)
    return len(table) >= 2 and bool(np.isfinite(values).all())


def drivers_chart_reason(release: Any, agency: str) -> str | None:
    """None when the agency's importance x performance chart can be drawn, otherwise why
    not: `too_few`, `collinear`, `constant` (the release's importance notes), `scores`
    (a driver's score is suppressed) or `other`."""
    try:
        table = _drivers_table(release, agency)
    except NotFound:
        return "other"
    if quadrant_drawable(table):
        return None
    if not np.isfinite(table["importance"].to_numpy(dtype=float)).all():
        notes = [n for n in table["note"] if n]
        return _REASONS.get(notes[0], "other") if notes else "other"
    return "scores"


# analysis.release.IMPORTANCE_NOTES -> the words the pages use (drivers_why_<reason>)
_REASONS = {
    "too few complete responses to rank the drivers": "too_few",
    "the drivers move together too closely to be told apart": "collinear",
    "the index or a driver does not vary": "constant",
}


def _agencies_of(release: Any) -> set[str]:
    estimates = release.tables.estimates
    return set(estimates.loc[estimates["level"] == "agency", "agency"].astype(str))


def draw(
    release: Any, chart: str, fmt: str, history: Sequence[Any], labels: dict[str, str]
) -> bytes:
    """One chart as PNG or SVG bytes (NotFound for an agency not in the release)."""
    from analysis import charts as quadrant
    from survey.publication import charts as pc

    kind, _, rest = chart.partition("-")
    lang, format = _lang(chart.rsplit("-", 1)[1]), _format(fmt)
    if kind == "forest":
        names = {code: n.get(lang) or code for code, n in release.agencies.items()}
        return pc.forest_plot(release.tables.estimates, lang=lang, labels=names, format=format)
    agency = rest.rsplit("-", 1)[0]
    if agency not in _agencies_of(release):
        raise NotFound(f"agency {agency!r} is not in release {release.id}")
    name = (release.agencies.get(agency) or {}).get(lang) or agency
    if kind == "drivers":
        items = release.tables.items
        return pc.driver_bars(
            items[items["level"] == "agency"], agency, lang=lang, labels=labels, format=format
        )
    if kind == "quadrant":
        table = _drivers_table(release, agency)
        if not quadrant_drawable(table):  # the page says why instead of showing an image
            raise NotFound(f"agency {agency!r} has no driver importance in release {release.id}")
        figure = quadrant.importance_performance(table, lang=lang, labels=labels)
        return pc.render(figure, format)
    points = []
    for past in history:
        estimates = past.tables.estimates
        row = estimates[
            (estimates["level"] == "agency")
            & (estimates["agency"].astype(str) == agency)
            & (estimates["measure"] == "index")
        ]
        if not row.empty:
            points.append(row.iloc[0][["estimate", "ci_low", "ci_high", "suppressed"]].to_dict())
            points[-1]["period"] = past.period
    return pc.trend_chart(pd.DataFrame(points), lang=lang, title=name, format=format)


class ChartStore:
    """Encoded charts by (release id, content hash, chart, format): bounded, thread-safe."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple[int, str, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(
        self,
        release: Any,
        chart: str,
        fmt: str,
        history: Sequence[Any] = (),
        labels: dict[str, str] | None = None,
    ) -> bytes:
        key = (release.id, release.content_hash, chart, fmt)
        cacheable = release.status == "published"
        if cacheable:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
        try:
            body = draw(release, chart, fmt, history, labels or {})
        except ChartError as exc:  # nothing drawable in this release: as if the chart did not exist
            raise NotFound(f"chart {chart!r} of release {release.id}: {exc}") from None
        if cacheable:
            with self._lock:
                self._items[key] = body
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return body
