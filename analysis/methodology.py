"""The short methodology note of a release, in Persian and English, from the rules it used.

Officials read the note on a phone before a meeting: it says in a phone screen or two who
answered, how answers are weighted, how sure the figures are and which are not published, with
the numbers of *this* release (its quality thresholds, its interval level, how many responses
and strata, whether it was calibrated, has a previous period, small-area and driver figures).
The technical detail (formulas, references, every computation fact) stays in the release's
long note, one link away.

    facts = release_facts(design.data, level, rules, has_previous=True, small_areas=True,
                          drivers=True, rank_draws=10_000)
    notes.update(summary_notes(facts))   # method_facts (JSON), summary_fa, summary_en

A release computed before these notes existed has its facts read back from its other notes
(:func:`facts_from_notes`), so its pages get the same short note. The text is Markdown: short
paragraphs, each opening with a bold lead.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from inspect import signature
from typing import Any

import pandas as pd

from analysis.drivers import key_drivers
from analysis.quality import QualityRules

__all__ = [
    "SUMMARY_KEYS",
    "MethodFacts",
    "facts_from_notes",
    "release_facts",
    "summary",
    "summary_notes",
]

# The release computes driver importance with key_drivers' own minimum of complete responses.
DRIVER_MIN_N: int = signature(key_drivers).parameters["min_n"].default
SUMMARY_KEYS = ("method_facts", "summary_fa", "summary_en")
_PERSIAN = str.maketrans("0123456789,.", "۰۱۲۳۴۵۶۷۸۹٬٫")


@dataclass(frozen=True)
class MethodFacts:
    """What the short note says about one release (all of it recorded by the computation)."""

    level: float = 0.95
    rules: QualityRules = field(default_factory=QualityRules)
    responses: int = 0
    strata: int = 0
    margins: tuple[str, ...] = ()  # calibrated per agency: "channel", "province"
    has_previous: bool = False
    rank_draws: int = 10_000
    small_areas: bool = False  # a Fay-Herriot model gave province figures
    drivers: bool = False  # driver items were analysed
    driver_min_n: int = DRIVER_MIN_N
    questionnaires: int = 1

    def to_json(self) -> str:
        data = asdict(self)
        data["margins"] = list(self.margins)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MethodFacts:
        data = json.loads(text)
        rules = QualityRules(**data.pop("rules"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["margins"] = tuple(known.get("margins", ()))
        return cls(rules=rules, **known)


def release_facts(
    data: pd.DataFrame,
    level: float,
    rules: QualityRules,
    *,
    has_previous: bool,
    small_areas: bool,
    drivers: bool,
    rank_draws: int,
) -> MethodFacts:
    """The facts of a release from its calibrated design's data (``_cal_<margin>`` columns
    name the calibration margins)."""
    margins = tuple(c.removeprefix("_cal_") for c in data.columns if str(c).startswith("_cal_"))
    questionnaires = int(data["questionnaire"].nunique()) if "questionnaire" in data else 1
    return MethodFacts(
        level=float(level),
        rules=rules,
        responses=len(data),
        strata=int(data["stratum"].nunique()) if "stratum" in data else 0,
        margins=margins,
        has_previous=has_previous,
        rank_draws=int(rank_draws),
        small_areas=small_areas,
        drivers=drivers,
        questionnaires=max(questionnaires, 1),
    )


def summary_notes(facts: MethodFacts) -> dict[str, str]:
    """The notes a release stores: its facts as JSON and the short note in both languages."""
    return {
        "method_facts": facts.to_json(),
        "summary_fa": summary(facts, "fa"),
        "summary_en": summary(facts, "en"),
    }


def facts_from_notes(notes: Mapping[str, str]) -> MethodFacts:
    """A release's facts from its stored notes: `method_facts` when the release has it,
    otherwise read back from the sentences and the rules the computation wrote."""
    if notes.get("method_facts"):
        try:
            return MethodFacts.from_json(notes["method_facts"])
        except (ValueError, TypeError, KeyError):
            pass
    design = re.search(r"(\d+) responses in (\d+) strata", notes.get("design", ""))
    level = re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*", notes.get("level", ""))
    ranks = re.search(r"over (\d+) draws", notes.get("ranks", ""))
    calibration = notes.get("calibration", "")
    return MethodFacts(
        level=float(level[1]) / 100 if level else 0.95,
        rules=_rules(notes.get("rules")),
        responses=int(design[1]) if design else 0,
        strata=int(design[2]) if design else 0,
        margins=tuple(m for m in ("channel", "province") if f"agency x {m}" in calibration),
        has_previous=not notes.get("change", "No previous").startswith("No previous"),
        rank_draws=int(ranks[1]) if ranks else 10_000,
        small_areas="Fay-Herriot area-level model" in notes.get("small_areas", ""),
        drivers="drivers" not in notes,
        questionnaires=2 if "questionnaires" in notes else 1,
    )


def _rules(text: str | None) -> QualityRules:
    if not text:
        return QualityRules()
    try:
        data: Any = json.loads(text)
    except ValueError:
        try:  # releases computed before the rules were written as JSON
            data = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return QualityRules()
    if not isinstance(data, dict):
        return QualityRules()
    fields = QualityRules.__dataclass_fields__
    try:
        return QualityRules(**{k: v for k, v in data.items() if k in fields})
    except (ValueError, TypeError):
        return QualityRules()


# ---- the text --------------------------------------------------------------------------------
def _integer(value: int, lang: str) -> str:
    text = f"{value:,}"
    return text.translate(_PERSIAN) if lang == "fa" else text


def _percent(fraction: float, lang: str) -> str:
    text = f"{round(fraction * 100, 1):g}"
    return text.translate(_PERSIAN) + "٪" if lang == "fa" else text + "%"


def summary(facts: MethodFacts, lang: str) -> str:
    """The short note (Markdown) in Persian (`fa`) or English (`en`)."""
    if lang not in ("fa", "en"):
        raise ValueError(f"lang: expected 'fa' or 'en', got {lang!r}")
    r = facts.rules
    n = lambda value: _integer(value, lang)  # noqa: E731
    p = lambda value: _percent(value, lang)  # noqa: E731
    values = {
        "responses": n(facts.responses),
        "strata": n(facts.strata),
        "level": p(facts.level),
        "of_100": n(round(facts.level * 100)),
        "draws": n(facts.rank_draws),
        "min_n": n(r.min_n),
        "min_eff": n(r.min_effective_n),
        "max_cv": p(r.max_cv),
        "a_max_cv": p(r.a_max_cv),
        "a_min_n": n(r.a_min_n),
        "b_max_cv": p(r.b_max_cv),
        "driver_min_n": n(facts.driver_min_n),
    }
    text = _TEXT[lang]
    parts = [text["who"].format(**values)]
    weighting = text["weights"]
    if facts.margins:
        weighting += " " + text["calibrated"].format(by=text["by_" + "_".join(facts.margins)])
    parts.append(weighting)
    parts.append(text["measure"] + (" " + text["pooled"] if facts.questionnaires > 1 else ""))
    sure = text["sure"].format(**values)
    sure += " " + (text["change"] if facts.has_previous else text["no_previous"])
    parts.append(sure + " " + text["ranks"].format(**values))
    suppressed = "suppressed_eff" if r.min_effective_n else "suppressed"
    parts.append(text[suppressed].format(**values) + " " + text["grades"].format(**values))
    if facts.small_areas:
        parts.append(text["small_areas"])
    if facts.drivers:
        parts.append(text["drivers"].format(**values))
    return "\n\n".join(parts) + "\n"


_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "who": (
            "**Who answered.** {responses} citizens who received a service in this period "
            "answered an SMS invitation. The transactions were sampled at random, separately in "
            "{strata} groups (strata), so that small agencies are not drowned by large ones."
        ),
        "weights": (
            "**Weighting.** Each answer counts for the transactions it stands for (its group's "
            "transactions divided by its answers)."
        ),
        "calibrated": (
            "The weights are then adjusted so that each agency's weighted answers add up to "
            "its real transactions {by}."
        ),
        "by_channel": "by channel",
        "by_province": "by province",
        "by_channel_province": "by channel and by province",
        "by_province_channel": "by province and by channel",
        "measure": (
            "**What is measured.** The satisfaction index is the average score from 0 to 100; "
            "the share satisfied is the percentage of citizens satisfied overall."
        ),
        "pooled": "Answers to different questionnaires are pooled: each scores 0 to 100.",
        "sure": (
            "**How sure.** Every figure has a {level} interval: in {of_100} samples out of "
            "100 it holds the figure that asking everyone would give."
        ),
        "change": (
            "A change from the previous period is significant (with an arrow) only when its "
            "own interval excludes zero."
        ),
        "no_previous": "There is no previous period to compare with.",
        "ranks": "Ranks come with a rank range from {draws} simulated draws.",
        "suppressed": (
            "**What is not published.** A figure from fewer than {min_n} answers, or with a "
            'coefficient of variation (CV) above {max_cv}, is not published: it reads "too '
            'few responses".'
        ),
        "suppressed_eff": (
            "**What is not published.** A figure from fewer than {min_n} answers, fewer than "
            "{min_eff} effective answers (very unequal weights count as fewer answers) or with "
            'a coefficient of variation (CV) above {max_cv} is not published: it reads "too '
            'few responses".'
        ),
        "grades": (
            "Published figures are graded A (CV at most {a_max_cv} and at least {a_min_n} "
            "answers), B (CV at most {b_max_cv}) or C (use with caution)."
        ),
        "small_areas": (
            "**Provinces.** Where an agency's own figure in a province fails this rule, a "
            "model-based figure (a Fay-Herriot model, from the agency's overall figure and its "
            "other provinces) is shown, marked as such."
        ),
        "drivers": (
            "**What drives satisfaction.** How much each aspect of the service matters is "
            "estimated only for agencies with at least {driver_min_n} complete answers (every "
            "aspect answered)."
        ),
    },
    "fa": {
        "who": (
            "**چه کسانی پاسخ دادند.** {responses} نفر از شهروندانی که در این دوره خدمتی "
            "گرفته‌اند به دعوت پیامکی پاسخ دادند. نمونه تصادفی تراکنش‌ها جداگانه در {strata} "
            "گروه (طبقه) گرفته شد تا دستگاه‌ها و خدمت‌های کوچک در میان بزرگ‌ها گم نشوند."
        ),
        "weights": (
            "**وزن‌دهی.** هر پاسخ به اندازه تراکنش‌هایی که نماینده آن‌هاست به حساب می‌آید "
            "(تراکنش‌های گروهش تقسیم بر پاسخ‌های آن)."
        ),
        "calibrated": (
            "سپس وزن‌ها چنان تنظیم می‌شوند که جمع وزن پاسخ‌های هر دستگاه با شمار واقعی "
            "تراکنش‌هایش {by} برابر شود."
        ),
        "by_channel": "به تفکیک شیوه ارائه",
        "by_province": "به تفکیک استان",
        "by_channel_province": "به تفکیک شیوه ارائه و به تفکیک استان",
        "by_province_channel": "به تفکیک استان و به تفکیک شیوه ارائه",
        "measure": (
            "**چه چیزی سنجیده می‌شود.** شاخص رضایت میانگین امتیاز پاسخ‌ها روی مقیاس ۰ تا ۱۰۰ "
            "است؛ سهم راضی‌ها درصد شهروندانی است که در مجموع راضی بوده‌اند."
        ),
        "pooled": "پاسخ‌های پرسشنامه‌های گوناگون با هم به کار رفته‌اند: امتیاز هر یک از ۰ تا ۱۰۰ است.",
        "sure": (
            "**چقدر مطمئنیم.** هر عدد با بازه اطمینان {level} منتشر می‌شود: در {of_100} نمونه "
            "از ۱۰۰ این بازه عددی را که پرسیدن از همه به دست می‌داد در بر دارد."
        ),
        "change": (
            "تغییر نسبت به دوره قبل فقط وقتی «معنادار» خوانده می‌شود و پیکان می‌گیرد که "
            "بازه اطمینان خود تغییر، صفر را در بر نگیرد."
        ),
        "no_previous": "دوره قبلی برای مقایسه نیست.",
        "ranks": "رتبه هر دستگاه با بازه رتبه همراه است که از {draws} شبیه‌سازی به دست آمده است.",
        "suppressed": (
            "**چه چیزی منتشر نمی‌شود.** عددی که از کمتر از {min_n} پاسخ یا با ضریب تغییرات "
            "(CV) بیش از {max_cv} به دست آید منتشر نمی‌شود و به جای آن «پاسخ کافی نیست» "
            "نوشته می‌شود."
        ),
        "suppressed_eff": (
            "**چه چیزی منتشر نمی‌شود.** عددی که از کمتر از {min_n} پاسخ، کمتر از {min_eff} "
            "پاسخ مؤثر (پاسخ‌های با وزن بسیار نابرابر کمتر شمرده می‌شوند) یا با ضریب تغییرات "
            "(CV) بیش از {max_cv} به دست آید منتشر نمی‌شود و به جای آن «پاسخ کافی نیست» "
            "نوشته می‌شود."
        ),
        "grades": (
            "عددهای منتشرشده درجه می‌گیرند: A (ضریب تغییرات حداکثر {a_max_cv} و دست‌کم "
            "{a_min_n} پاسخ)، B (ضریب تغییرات حداکثر {b_max_cv}) و C (با احتیاط استفاده شود)."
        ),
        "small_areas": (
            "**استان‌ها.** جایی که عدد خود یک دستگاه در یک استان به این حد نمی‌رسد، برآورد "
            "مدل‌محور (مدل فی–هریوت که از عدد کل دستگاه و استان‌های دیگرش کمک می‌گیرد) با برچسب "
            "«مدل‌محور» نشان داده می‌شود."
        ),
        "drivers": (
            "**عوامل رضایت.** اهمیت هر جنبه خدمت فقط برای دستگاهی برآورد می‌شود که دست‌کم "
            "{driver_min_n} پاسخ کامل (پاسخ به همه جنبه‌ها) داشته باشد."
        ),
    },
}
