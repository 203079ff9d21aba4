"""Iranian mobile numbers in every usual written form, and clear reasons for the rest."""

from __future__ import annotations

import pytest

from survey.kernel.phones import InvalidPhone, check_mobile, describe, normalise_mobile


@pytest.mark.parametrize(
    "raw",
    [
        "09121234567",
        "+989121234567",
        "989121234567",
        "00989121234567",
        "9121234567",
        "0912 123 4567",
        "+98 912-123-4567",
        "(0912) 123.45.67",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        "+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷",
        "0912\u200c123\u200c4567",
        "+98 0912 123 4567",
        " 09121234567 ",
    ],
)
def test_usual_forms_become_e164(raw: str) -> None:
    assert normalise_mobile(raw) == "+989121234567"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12", "phone '12' is not a mobile number (it has 2 digits"),
        ("02188776655", "phone (11 digits) is not a mobile number"),
        ("+14155552671", "is not an Iranian number"),
        ("abc", "phone 'abc' is not a phone number (it has no digits)"),
        ("0912-ABC-4567", "only digits, spaces, dashes and a leading + allowed"),
        ("", "phone '' is empty"),
        ("0" * 50, "is too long"),
        ("09121234567890", "is not a valid phone number"),
        # The Persian decimal separator is not a separator (digits are folded after cleaning).
        ("۰۹۱۲٫۱۲۳٫۴۵۶۷", "only digits, spaces, dashes and a leading + allowed"),
    ],
)
def test_other_values_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_mobile(raw)
    assert reason in str(caught.value)


def test_reasons_never_repeat_a_number_that_could_be_real() -> None:
    e164, reason = check_mobile("021 8877 6655")
    assert e164 is None
    assert "8877" not in f"{describe('021 8877 6655')} {reason}"


def test_the_library_decides_beyond_the_fast_path() -> None:
    # Every mobile prefix the library knows is accepted; a landline prefix never is.
    assert check_mobile("09901234567")[0] == "+989901234567"
    assert check_mobile("09011234567")[0] == "+989011234567"
    assert check_mobile("04133334444")[1] == "is not a mobile number"
