"""The SMS reply parser: every form people type (Latin/Persian/Arabic-Indic digits, ZWNJ,
words around, opt-out and opt-in words)."""

from __future__ import annotations

import pytest

from survey.answering.sms_replies import (
    Answer,
    Invalid,
    OptIn,
    OptOut,
    normalise_reply,
    parse_reply,
)


@pytest.mark.parametrize(
    ("text", "digit"),
    [
        ("4", 4),
        ("۴", 4),  # Persian
        ("٤", 4),  # Arabic-Indic
        ("  ۵\n", 5),
        ("\u200c۳\u200c", 3),  # ZWNJ around
        ("جواب\u200cم ۲ است", 2),
        ("۴ ستاره", 4),
        ("answer: 1!", 1),
        ("نمره‌ام٥", 5),
        ("0", 0),
        ("\u202b۱\u202c", 1),  # direction marks
        ("５", 5),  # full-width digit (NFKC)
    ],
)
def test_answers_in_every_digit_form(text: str, digit: int) -> None:
    assert parse_reply(text) == Answer(digit)


@pytest.mark.parametrize(
    "text",
    [
        "11",
        "۱۱",
        "١١",
        "لغو",
        "لغو۱۱",
        "لغو ۱۱",
        "لغو11",
        "STOP",
        "stop",
        "Stop please",
        "stop11",
        "انصراف",
        "لطفا انصراف",
        "ان\u200cصراف".replace("\u200c", ""),
        "لغو\u200c",
        "unsubscribe",
        "لغو ۴",  # an opt-out word wins over a digit
    ],
)
def test_opt_out_words_and_variants(text: str) -> None:
    assert parse_reply(text) == OptOut()


@pytest.mark.parametrize("text", ["12", "۱۲", "١٢", " 12 ", "start", "START"])
def test_twelve_opts_back_in(text: str) -> None:
    assert parse_reply(text) == OptIn()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no digit"),
        ("سلام", "no digit"),
        ("ok", "no digit"),
        ("4 5", "2 numbers"),
        ("۴ و ۵", "2 numbers"),
        ("45", "2 digits"),
        ("۱۰", "2 digits"),
    ],
)
def test_invalid_replies_say_why(text: str, reason: str) -> None:
    result = parse_reply(text)
    assert isinstance(result, Invalid)
    assert reason in result.reason


def test_normalisation_folds_arabic_letters_and_marks() -> None:
    assert normalise_reply("يك\u200cي  ٣") == "یکی 3"
