"""What a citizen's SMS reply means: an answer digit, an opt-out, an opt-in, or nothing usable.

Pure: text in, value out (no database, no web). Replies come from cheap phones with any
keyboard, so the parser first normalises what people actually type:

- digits in Latin (0-9), Persian (۰-۹) or Arabic-Indic (٠-٩) are the same digits;
- zero-width non-joiners/joiners, direction marks and tatweel are dropped; Arabic yeh/kaf
  and presentation forms (NFKC) become the Persian letters; case is folded;
- words and punctuation around a digit are allowed ("۴ ستاره", "answer: 4!", "جواب‌ ۵").

Then, in this order (opting out wins on any doubt, so nobody is ever pestered):

1. **OptOut** when the reply contains an opt-out word (`لغو`, `انصراف`, `stop`, `unsubscribe`,
   also glued to digits as in `لغو۱۱` or `stop11`) or its only number is `11`;
2. **OptIn** when its only number is `12` (or the word `start`);
3. **Answer(digit)** when it holds exactly one number and that number is a single digit;
4. **Invalid(reason)** otherwise (no digit, several numbers, a number of two or more digits).

Whether the digit answers the current question (e.g. 1-5 for a five-point scale) is for the
dialog to decide; the parser does not know the question.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from survey.kernel.locale import fold_digits

__all__ = ["Answer", "Invalid", "OptIn", "OptOut", "Reply", "normalise_reply", "parse_reply"]

# Letters and marks; the digits are folded by survey.kernel.locale.fold_digits.
_FOLD_LETTERS = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh -> Persian yeh
        "\u0649": "\u06cc",  # alef maksura -> Persian yeh
        "\u0643": "\u06a9",  # Arabic kaf -> Persian kaf
        **{ch: None for ch in "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u0640\ufeff"},
    }
)
_NUMBER = re.compile(r"[0-9]+")
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters (any script), digits excluded
OPT_OUT_WORDS = frozenset({"لغو", "انصراف", "stop", "unsubscribe", "optout"})
OPT_OUT_NUMBER = "11"
OPT_IN_WORDS = frozenset({"start"})
OPT_IN_NUMBER = "12"


@dataclass(frozen=True, slots=True)
class Answer:
    """One digit, as typed (validity for the current question is checked by the dialog)."""

    digit: int


@dataclass(frozen=True, slots=True)
class OptOut:
    """Stop all messages to this number, at once."""


@dataclass(frozen=True, slots=True)
class OptIn:
    """Allow messages to this number again (after an opt-out)."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Nothing usable; `reason` is for logs and tests, never shown to the citizen as is."""

    reason: str


Reply = Answer | OptOut | OptIn | Invalid


def normalise_reply(text: str) -> str:
    """Latin digits, Persian letters, no invisible marks, case folded, spaces collapsed."""
    folded = fold_digits(unicodedata.normalize("NFKC", text).translate(_FOLD_LETTERS)).casefold()
    return " ".join(folded.split())


def parse_reply(text: str) -> Reply:
    """Classify one SMS reply (see the module docstring for the rules and their order)."""
    normal = normalise_reply(text)
    words = set(_WORD.findall(normal))
    numbers = _NUMBER.findall(normal)
    if words & OPT_OUT_WORDS or numbers == [OPT_OUT_NUMBER]:
        return OptOut()
    if numbers == [OPT_IN_NUMBER] or (not numbers and words & OPT_IN_WORDS):
        return OptIn()
    if not numbers:
        return Invalid("no digit in the reply")
    if len(numbers) > 1:
        return Invalid(f"{len(numbers)} numbers in the reply; expected one digit")
    if len(numbers[0]) > 1:
        return Invalid(f"a number of {len(numbers[0])} digits; expected one digit")
    return Answer(int(numbers[0]))
