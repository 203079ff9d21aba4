"""The printed report of a release: a few pages officials take to a meeting.

Overview (national figure, league table of agencies with their intervals, provinces), then one
compact block per agency (its figures, trend, the aspects of its service, channels, services
and provinces), then the short methodology note. Rows without a published figure are not
printed one by one: each table says in one line which names have too few responses. The same
model feeds the PDF (survey.publication.pdf), which prints this page with Chromium.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import jdatetime
from markupsafe import Markup

from survey.kernel.periods import tehran_day
from survey.publication import methodology
from survey.publication.view import Fmt, Release, agency_page, overview_page

__all__ = ["compact", "css_string", "report_page", "running"]


def compact(table: Mapping[str, Any]) -> dict[str, Any]:
    """A domain table's published rows, and the names of the others in one list."""
    rows = list(table.get("rows") or [])
    return {
        "rows": [r for r in rows if not r["suppressed"]],
        "suppressed": [r["name"] for r in rows if r["suppressed"]],
        "axis": table.get("axis"),
    }


def _agency_block(page: Mapping[str, Any], base: str) -> dict[str, Any]:
    trend = page["trend"]
    published = [p for p in trend["points"] if not p["suppressed"]]
    return {
        "code": page["code"],
        "name": page["name"],
        "href": f"{base}/agencies/{page['code']}",
        "headline": page["headline"],
        # a trend drawn only with two or more published periods
        "trend": trend["chart"] if len(published) > 1 else None,
        "drivers": [d for d in page["drivers"] if not d["suppressed"]],
        "drivers_suppressed": [d["label"] for d in page["drivers"] if d["suppressed"]],
        "drivers_importance": any(d.get("importance") for d in page["drivers"]),
        "drivers_reason": page.get("drivers_reason"),
        "channels": compact(page["channels"]),
        "services": compact(page["services"]),
        "provinces": compact(page["provinces"]),
    }


def report_page(
    release: Release,
    lang: str,
    *,
    base: str,
    history: Sequence[Release] = (),
    item_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report's model: the overview, one block per agency (league order), methodology."""
    overview = overview_page(release, lang, base)
    agencies = [
        _agency_block(
            agency_page(
                release, row["code"], lang, base=base, history=history, item_labels=item_labels
            ),
            base,
        )
        for row in overview["league"]["rows"]
    ]
    return {
        **overview,
        "league": compact(overview["league"]),
        "provinces": compact(overview["provinces"]),
        "agencies": agencies,
        "methodology": methodology.methodology_page(release, lang, base),
    }


def css_string(text: str) -> Markup:
    """`text` as a CSS string literal safe inside a <style> element: letters and digits of
    any script and spaces stay, everything else is a CSS escape (no quote, `<` or `\\`
    can end the string or the element)."""
    out = [ch if ch.isalnum() or ch == " " else f"\\{ord(ch):x} " for ch in text]
    return Markup('"' + "".join(out) + '"')


def _plain_day(value: date, lang: str) -> str:
    """Solar Hijri date with the Gregorian one beside it, as plain text (isolated LTR)."""
    solar = jdatetime.date.fromgregorian(date=value)
    months = jdatetime.date.j_months_fa if lang == "fa" else jdatetime.date.j_months_en
    solar_text = Fmt(lang).digits(f"{solar.day} {months[solar.month - 1]} {solar.year}")
    return f"{solar_text} (\u2066{value}\u2069)"


def running(release: Release, lang: str, words: Mapping[str, Any]) -> dict[str, Markup]:
    """The header and footer printed on every page (CSS strings for @page margin boxes):
    the report, the release's period and version, its publication date; "page N of M"."""
    fmt = Fmt(lang)
    head = (
        f"{words['report_title']}: {fmt.period(release.period)} · "
        f"{words['release_number']} {fmt.integer(release.number)}"
    )
    published = release.published_at
    foot = f"{words['site']}" + (
        f" · {words['published']}: {_plain_day(tehran_day(published), lang)}" if published else ""
    )
    return {
        "head": css_string(head),
        "foot": css_string(foot),
        "page": css_string(f"{words['report_page']} "),
        "of": css_string(f" {words['report_of']} "),
        "counter": Markup("persian" if lang == "fa" else "decimal"),
    }
