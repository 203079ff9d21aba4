"""Iranian mobile numbers: any usual written form to E.164 (`+989121234567`), or a reason why not.

Agencies send phones as people write them: `0912 345 6789`, `+98 912-345-6789`, `98912...`,
`0098912...`, `912...`, in Persian (۰-۹) or Arabic-Indic (٠-٩) digits, with spaces, dashes,
dots, brackets or zero-width non-joiners in between. `normalise_mobile` accepts all of these.

The `phonenumbers` library (Google's libphonenumber metadata) decides what is a mobile number.
Ingestion calls this once per transaction, so the common case takes a fast path: after the
digits are cleaned with `str.translate`, the national number is matched against the library's
own IR mobile pattern (one compiled regex). Anything that does not match goes through
`phonenumbers.parse` in full, which also gives the precise reason for a rejection. Results are
cached, so resends and repeated phones cost a dictionary look-up.

Reasons never contain the number itself when it could be one (see `describe`), so they are safe
to return to an agency or print.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from survey.kernel.locale import fold_digits

__all__ = ["InvalidPhone", "check_mobile", "describe", "normalise_mobile"]

_SEPARATORS = " \t\u00a0-.()/\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u2010\u2011\u2012\u2013"
# Separators go and a full-width plus is a plus; then survey.kernel.locale folds the digits (in
# that order: the Persian decimal separator folds to '.', which is no separator here).
_STRIP = str.maketrans("＋", "+", _SEPARATORS)
_IR = phonenumbers.PhoneMetadata.metadata_for_region("IR")
# Shipped with the library:
assert _IR is not None and _IR.mobile is not None and _IR.mobile.national_number_pattern
_IR_MOBILE = re.compile(_IR.mobile.national_number_pattern)
_MAX_INPUT = 40
_ECHO_LIMIT = 6  # inputs with fewer digits cannot be a phone number, so they may be echoed


class InvalidPhone(ValueError):
    """A value that is not an Iranian mobile number; the message says why (without the number)."""


def normalise_mobile(raw: str) -> str:
    """The E.164 form of an Iranian mobile number, e.g. `+989121234567`.

    Raises `InvalidPhone` with a reason such as "is not a mobile number".
    """
    e164, reason = check_mobile(raw)
    if e164 is None:
        raise InvalidPhone(f"phone {describe(raw)} {reason}")
    return e164


@lru_cache(maxsize=65_536)
def check_mobile(raw: str) -> tuple[str | None, str | None]:
    """`(e164, None)` for a mobile number, `(None, reason)` otherwise. Cached."""
    if len(raw) > _MAX_INPUT:
        return None, f"is too long ({len(raw)} characters) to be a phone number"
    cleaned = fold_digits(raw.translate(_STRIP))
    if not cleaned:
        return None, "is empty"
    national = _national_number(cleaned)
    if national is not None and _IR_MOBILE.fullmatch(national):
        return "+98" + national, None
    return _check_with_library(cleaned)


def describe(raw: str) -> str:
    """How a rejected phone is named in a message: echoed only when too short to be a number."""
    digits = sum(ch.isdigit() for ch in raw)
    if digits <= _ECHO_LIMIT and len(raw) <= 12:
        return repr(raw)
    return f"({digits} digits)"


def _national_number(cleaned: str) -> str | None:
    """The 10-digit national number for the usual written forms, or None to ask the library."""
    if cleaned.startswith("+98"):
        rest = cleaned[3:]
    elif cleaned.startswith("0098"):
        rest = cleaned[4:]
    elif len(cleaned) == 12 and cleaned.startswith("98"):
        rest = cleaned[2:]
    elif len(cleaned) == 11 and cleaned.startswith("0"):
        rest = cleaned[1:]
    else:
        rest = cleaned
    if len(rest) == 11 and rest.startswith("0"):  # +98 0912... is a common slip
        rest = rest[1:]
    if len(rest) != 10 or not rest.isdigit() or not rest.isascii():
        return None
    return rest


def _check_with_library(cleaned: str) -> tuple[str | None, str | None]:
    if not any(ch.isdigit() for ch in cleaned):
        return None, "is not a phone number (it has no digits)"
    if not cleaned.lstrip("+").isdigit() or not cleaned.isascii():
        return None, "is not a phone number (only digits, spaces, dashes and a leading + allowed)"
    digits = len(cleaned.lstrip("+"))
    if digits < 10:
        return None, f"is not a mobile number (it has {digits} digits; expected e.g. 0912 345 6789)"
    try:
        number = phonenumbers.parse(cleaned, "IR")
    except NumberParseException:
        return None, "is not a phone number"
    if not phonenumbers.is_valid_number(number):
        return None, "is not a valid phone number"
    if phonenumbers.region_code_for_number(number) != "IR":
        return None, "is not an Iranian number (expected +98 9xx xxx xxxx)"
    kind = phonenumbers.number_type(number)
    if kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None, "is not a mobile number"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), None
