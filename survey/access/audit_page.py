"""The audit log page's model for a language: each entry's time in Tehran as a Solar Hijri day
with the Gregorian date beside it, numbers in the reader's digits; the page
(`access/audit_log.html.j2`) names the actions in words and keeps the codes beside them for
filtering.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from markupsafe import Markup

from survey.access.audit_log import AuditPage
from survey.kernel.locale import Numbers, localise
from survey.kernel.periods import TEHRAN, tehran_day

__all__ = ["audit_page_model"]


def audit_page_model(page: AuditPage, lang: str) -> dict[str, Any]:
    """The entries with their times and ids formatted for `lang`, the filters as typed."""
    numbers = Numbers(lang)
    rows = []
    for entry in page.entries:
        at = entry["at"]
        clock = localise(at.astimezone(TEHRAN).strftime("%H:%M:%S"), lang)
        rows.append(
            {
                **entry,
                "number": numbers.integer(int(entry["id"])),
                "day": numbers.day(tehran_day(at)),
                "time": Markup("<bdi>{}</bdi>").format(clock),
                "family": str(entry["action"]).split(".", 1)[0],
            }
        )
    return {
        "entries": rows,
        "count": numbers.integer(len(rows)),
        "filters": asdict(page.filters),
        "limit": numbers.integer(page.filters.limit),
        "error": page.error,
    }
