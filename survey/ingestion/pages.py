"""Server-rendered pages: the ingestion overview at `/ingestion` (Persian by default, English
with ?lang=en). `/` is the publication overview (survey.publication.pages).

The page shows aggregate counts only, to admins, statisticians and viewers (signed in on
/login, or with a bearer token). Numbers and dates are
formatted here for the language (Persian digits, Solar Hijri dates with the Gregorian date
beside); every word of the page lives in the template.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from survey.context import AppContext
from survey.http.guards import staff
from survey.ingestion import overview as overview_service
from survey.ingestion.overview import CountRow, Overview
from survey.kernel.locale import LANGUAGES, Numbers
from survey.sampling.plans import today_in


def _row(row: CountRow, numbers: Numbers, label: str) -> dict[str, str]:
    return {
        "label": label,
        "reported": numbers.integer(row.reported),
        "duplicates": numbers.integer(row.duplicates),
        "eligible": numbers.integer(row.eligible),
        "sampled": numbers.integer(row.sampled),
        "fraction": numbers.percent(row.fraction),
    }


def _questionnaire_groups(
    choices: list[dict[str, Any]], numbers: Numbers
) -> list[dict[str, Any]]:
    """Choices summarised as questionnaire, mode and channel with how many services use each."""
    counts: dict[tuple[str, str, str, str], int] = {}
    for choice in choices:
        key = (
            str(choice["questionnaire"]),
            str(choice.get("version", "")),
            str(choice["mode"]),
            str(choice.get("channel") or ""),
        )
        counts[key] = counts.get(key, 0) + 1
    return [
        {
            "questionnaire": qid,
            "version": version,
            "mode": mode,
            "channel": channel or None,
            "services": numbers.integer(count),
            "one": count == 1,
        }
        for (qid, version, mode, channel), count in sorted(counts.items())
    ]


def page_model(data: Overview, lang: str) -> dict[str, Any]:
    """What the template shows: every value already formatted for `lang`."""
    numbers = Numbers(lang)

    def name(row: CountRow) -> str:
        return (row.name_fa if lang == "fa" else row.name_en) or row.key

    plan = None
    if data.plan is not None:
        plan = {
            "version": numbers.integer(data.plan.version),
            "name": data.plan.name,
            "starts": numbers.day(data.plan.starts),
            "strata": data.plan.strata,
            "default_rate": numbers.rate(data.plan.default_rate),
            "rules": [
                {
                    "where": [(k, str(v)) for k, v in rule.items() if k != "rate"],
                    "rate": numbers.rate(float(rule["rate"])),  # type: ignore[arg-type]
                }
                for rule in data.plan.rules
            ],
            "contact_rule_days": numbers.integer(data.plan.contact_rule_days),
            "expires_after_days": numbers.integer(round(data.plan.expires_after_days)),
            "reminder_after_hours": (
                numbers.integer(round(data.plan.reminder_after_hours))
                if data.plan.reminder_after_hours is not None
                else None
            ),
            "questionnaires": data.plan.questionnaires,
            "questionnaire_groups": _questionnaire_groups(data.plan.questionnaires, numbers),
        }
    return {
        "lang": lang,
        "dir": "rtl" if lang == "fa" else "ltr",
        "other_lang": "en" if lang == "fa" else "fa",
        "today": numbers.day(data.today),
        "first_day": numbers.day(data.first_day) if data.first_day else None,
        "total": _row(data.total, numbers, ""),
        "agency_count": numbers.integer(len(data.agencies)),
        "province_count": numbers.integer(data.provinces),
        "agencies": [_row(r, numbers, name(r)) for r in data.agencies],
        "channels": [_row(r, numbers, name(r)) for r in data.channels],
        "days": [_row(r, numbers, numbers.day(date.fromisoformat(r.key))) for r in data.days],
        "plan": plan,
    }


class PageController(Controller):
    path = "/"
    tags: ClassVar[list[str]] = ["pages"]
    include_in_schema = False

    @get("/ingestion", guards=[staff("admin", "statistician", "viewer")], sync_to_thread=True)
    def overview(self, request: Request, lang: FromQuery[str] = "fa") -> Template:
        """What was reported and sampled, per agency, channel and day, and the plan in force.

        Staff only (a session cookie from /login or a bearer token); not agency operators,
        since the page shows every agency's figures."""
        context: AppContext = request.app.state.context
        language = lang if lang in LANGUAGES else "fa"
        today = today_in(context.clock(), context.settings.timezone)
        with context.read_sessions() as session:
            data = overview_service.overview(session, today=today)
        return Template(
            template_name="ingestion/overview.html.j2",
            context=page_model(data, language),
            headers={"Content-Language": language},
        )
