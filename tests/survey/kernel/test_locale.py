"""Languages and digits in one place (survey.kernel.locale)."""

from __future__ import annotations

import pytest

from survey.kernel.locale import (
    LANGUAGES,
    fold_digits,
    language_or_default,
    localise,
    other_language,
    persian_digits,
)


@pytest.mark.parametrize(
    ("wanted", "language"), [("fa", "fa"), ("en", "en"), ("xx", "fa"), ("", "fa"), (None, "fa")]
)
def test_an_unknown_language_falls_back_to_persian(wanted: str | None, language: str) -> None:
    assert language_or_default(wanted) == language


def test_the_switch_offers_the_other_language() -> None:
    assert [other_language(lang) for lang in LANGUAGES] == ["en", "fa"]
    assert other_language("xx") == "fa"


def test_digits_fold_and_localise_both_ways() -> None:
    assert fold_digits("۱۴۰۵-٠٨-۰۱ ۲٫۵") == "1405-08-01 2.5"
    assert persian_digits("1405-08-01") == "۱۴۰۵-۰۸-۰۱"
    assert localise("-1,234.5%", "fa", minus=True) == "\u2212۱٬۲۳۴٫۵٪"
    assert localise("-1,234.5%", "en") == "-1,234.5%"
