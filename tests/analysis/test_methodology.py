"""The short methodology note: written from the release's own rules, in Persian and English,
short, and the same for a release computed before the note was stored."""

from __future__ import annotations

import re

import pytest

from analysis.methodology import SUMMARY_KEYS, MethodFacts, facts_from_notes, summary, summary_notes
from analysis.quality import QualityRules
from analysis.release import compute_release
from tests.analysis.test_release import ITEMS, make_export

LATIN = re.compile(r"[A-Za-z0-9]")


@pytest.fixture(scope="module")
def notes() -> dict[str, str]:
    previous = make_export(seed=2, period="1404-12")
    current = make_export(seed=1, period="1405-01", shift=6.0)
    return compute_release(*current, previous=previous, drivers=ITEMS).notes


def test_the_release_stores_its_note_in_both_languages(notes: dict[str, str]) -> None:
    facts = MethodFacts.from_json(notes["method_facts"])
    assert facts.has_previous and facts.drivers and facts.margins == ("channel", "province")
    assert facts.responses > 0 and facts.strata > 0 and facts.level == 0.95
    assert notes["summary_fa"] == summary(facts, "fa")
    assert notes["summary_en"] == summary(facts, "en")
    english = notes["summary_en"]
    assert f"{facts.responses:,} citizens" in english
    assert "fewer than 30 answers, fewer than 30 effective answers" in english
    assert "above 33.3%" in english and "CV at most 5% and at least 100 answers" in english
    assert "95% interval" in english and "excludes zero" in english
    assert "at least 100 complete answers" in english


def test_the_persian_note_is_persian_with_persian_digits(notes: dict[str, str]) -> None:
    persian = notes["summary_fa"]
    assert "بازه اطمینان ۹۵٪" in persian and "۳۳٫۳٪" in persian and "کمتر از ۳۰ پاسخ" in persian
    # Latin letters only for the grade letters and the CV abbreviation, no Latin digits
    latin = set(re.findall(r"[A-Za-z]+", persian))
    assert latin <= {"A", "B", "C", "CV"}, latin
    assert not re.search(r"[0-9]", persian)


def test_the_note_follows_the_rules_the_release_used() -> None:
    strict = QualityRules(min_n=50, min_effective_n=0, max_cv=0.25, a_max_cv=0.04, a_min_n=200)
    facts = MethodFacts(level=0.9, rules=strict, responses=1234, strata=12)
    english = summary(facts, "en")
    assert "fewer than 50 answers, or with a coefficient of variation (CV) above 25%" in english
    assert "effective" not in english  # no effective-sample-size rule in these rules
    assert "90% interval" in english and "in 90 samples out of 100" in english
    assert "1,234 citizens" in english and "12 groups" in english
    assert "no previous period" in english and "Provinces" not in english
    persian = summary(facts, "fa")
    assert "کمتر از ۵۰ پاسخ" in persian and "۲۵٪" in persian and "۱٬۲۳۴ نفر" in persian


def test_the_note_is_a_phone_screen_or_two(notes: dict[str, str]) -> None:
    """At 16 px on a 360-px phone a line holds about 40 characters and a screen about 20
    lines: two screens are about 1,600 characters; the browser test measures the page."""
    for lang in ("fa", "en"):
        text = re.sub(r"\*\*", "", notes[f"summary_{lang}"])
        assert len(text) <= 1900, (lang, len(text))


def test_an_older_release_gets_its_note_from_its_other_notes(notes: dict[str, str]) -> None:
    older = {k: v for k, v in notes.items() if k not in SUMMARY_KEYS}
    facts = facts_from_notes(older)
    stored = MethodFacts.from_json(notes["method_facts"])
    assert facts == stored
    assert summary_notes(facts)["summary_fa"] == notes["summary_fa"]


def test_unknown_language_is_named() -> None:
    with pytest.raises(ValueError, match="lang"):
        summary(MethodFacts(), "de")
