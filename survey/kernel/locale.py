"""Languages and digits in one place: which languages the platform speaks, how numbers are
written for a Persian reader, and how what people type in Persian or Arabic-Indic digits is
read back.

Pages, SMS texts, charts and reports format with `localise`; everything that reads input
(dates, numbers in forms, SMS replies, phones) folds digits with `fold_digits` first, so
"۱۴۰۵-۰۸-۰۱", "١٤٠٥-٠٨-٠١" and "1405-08-01" are one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import jdatetime
from markupsafe import Markup

__all__ = [
    "ARABIC_INDIC_DIGITS",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "PERSIAN_DIGITS",
    "Numbers",
    "fold_digits",
    "language_or_default",
    "localise",
    "other_language",
    "persian_digits",
]

LANGUAGES: tuple[str, ...] = ("fa", "en")  # Persian first: the default everywhere
DEFAULT_LANGUAGE = "fa"

LATIN_DIGITS = "0123456789"
PERSIAN_DIGITS = "".join(chr(0x06F0 + d) for d in range(10))  # ۰۱۲۳۴۵۶۷۸۹
ARABIC_INDIC_DIGITS = "".join(chr(0x0660 + d) for d in range(10))  # ٠١٢٣٤٥٦٧٨٩
PERSIAN_DECIMAL_SEPARATOR = "\u066b"  # ٫
PERSIAN_THOUSANDS_SEPARATOR = "\u066c"  # ٬
PERSIAN_PERCENT = "\u066a"  # ٪
MINUS = "\u2212"  # a real minus sign: the hyphen reads as a dash in right-to-left text

_TO_PERSIAN_DIGITS = str.maketrans(LATIN_DIGITS, PERSIAN_DIGITS)
_TO_PERSIAN_NUMBER: dict[int, int] = str.maketrans(
    LATIN_DIGITS + ".,%",
    PERSIAN_DIGITS + PERSIAN_DECIMAL_SEPARATOR + PERSIAN_THOUSANDS_SEPARATOR + PERSIAN_PERCENT,
)
_TO_PERSIAN_SIGNED: dict[int, int] = {**_TO_PERSIAN_NUMBER, ord("-"): ord(MINUS)}
_FOLD_DIGITS = str.maketrans(
    PERSIAN_DIGITS + ARABIC_INDIC_DIGITS + PERSIAN_DECIMAL_SEPARATOR,
    LATIN_DIGITS + LATIN_DIGITS + ".",
)


def language_or_default(wanted: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """`wanted` when the platform speaks it, else `default` (itself Persian unless known)."""
    for language in LANGUAGES:
        if wanted == language:
            return language
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def other_language(lang: str) -> str:
    """The language a page's switch link offers a reader of `lang` (Persian unless `lang` is)."""
    for language in LANGUAGES:
        if language != lang:
            return language
    return DEFAULT_LANGUAGE


def persian_digits(text: str) -> str:
    """Latin digits written as Persian digits; nothing else changes (dates, codes)."""
    return text.translate(_TO_PERSIAN_DIGITS)


def localise(text: str, lang: str, *, minus: bool = False) -> str:
    """A formatted number (or a text holding numbers) as a reader of `lang` writes it: for
    Persian, Persian digits, `٫` for the decimal point, `٬` between thousands and `٪`, and
    with `minus` a real minus sign for `-` (not for texts with dates: 1405-08-01); English is
    left as it is."""
    if lang != "fa":
        return text
    return text.translate(_TO_PERSIAN_SIGNED if minus else _TO_PERSIAN_NUMBER)


def fold_digits(text: str) -> str:
    """Persian and Arabic-Indic digits (and the Persian decimal separator) as Latin ones, so
    input typed on any keyboard reads the same."""
    return text.translate(_FOLD_DIGITS)


@dataclass(frozen=True, slots=True)
class Numbers:
    """Formats numbers and dates for one language."""

    lang: str

    def integer(self, value: int) -> str:
        return self._digits(f"{value:,}")

    def percent(self, value: float | None) -> str:
        if value is None:
            return "-"
        return self._digits(f"{value * 100:.1f}%")

    def rate(self, value: float) -> str:
        return self._digits(f"{value * 100:g}%")

    def day(self, value: date) -> Markup:
        """Solar Hijri date with the Gregorian date beside it."""
        solar = jdatetime.date.fromgregorian(date=value)
        months = jdatetime.date.j_months_fa if self.lang == "fa" else jdatetime.date.j_months_en
        hijri = f"{solar.day} {months[solar.month - 1]} {solar.year}"
        # The Gregorian date is isolated left-to-right so that it reads correctly in Persian.
        return Markup('{} (<bdi dir="ltr">{}</bdi>)').format(self._digits(hijri), value.isoformat())

    def _digits(self, text: str) -> str:
        return localise(text, self.lang)
