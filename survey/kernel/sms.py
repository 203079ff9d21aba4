"""SMS texts: how many parts a text takes, the platform's texts per language
(`sms_texts/{fa,en}.yaml`), and invitations that always say who is asking.

It sits in the kernel because three layers need the same answer to "does this text fit?": the
registry (an agency's SMS name), sampling (a plan is refused when its texts cannot fit, with the
real link) and outreach (the texts it sends).

Part counting follows GSM 03.38 / 3GPP TS 23.038:
- a text made only of GSM-7 characters is 7-bit: 160 septets in one part, 153 per part when
  split (the rest of each part holds the concatenation header); the extension characters
  (`^ { } \\ [ ~ ] | €` and form feed) take two septets and are never split across parts;
- any other character (every Persian letter and digit) makes the whole text UCS-2: 70 UTF-16
  code units in one part, 67 per part when split; a surrogate pair is never split.

Invitations, reminders and the opening of an SMS dialogue start with the agency's name (an
unsigned SMS with a link looks like phishing) and end with the opt-out hint (`لغو۱۱`,
"STOP: 11") that Iranian service numbers must carry, in at most `MAX_INVITATION_PARTS` parts.
Where they fit they also name the service and the day of the transaction, so that a citizen
who received several services knows which one is meant. `render_invitation` tries, best
first: each agency name (`agency_names`), then the service and the day, the service alone, the
day alone, neither; within each, the courtesy wording in full, then shorter (`brevity`). The
agency is never left out: a text that cannot fit even so raises `MessageTooLong`, and plans
are checked for that when they are applied (`invitation_problems`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jdatetime
import jinja2
import yaml

from survey.errors import InvalidInput, Problem
from survey.kernel.locale import LANGUAGES, persian_digits

__all__ = [
    "INVITATION_KINDS",
    "LANGUAGES",
    "MAX_INVITATION_PARTS",
    "MODES",
    "ONE_PART_KEYS",
    "SMS_NAME_MAX",
    "MessageTooLong",
    "Sender",
    "SmsParts",
    "agency_names",
    "count_parts",
    "invitation_problems",
    "render",
    "render_invitation",
    "sms_day",
    "sms_name_problem",
]

MAX_INVITATION_PARTS = 2
SMS_NAME_MAX = 20  # characters of an agency's SMS name (both languages)
INVITATION_KINDS: tuple[str, ...] = ("invite", "reminder")
MODES: tuple[str, ...] = ("sms_link", "sms_dialog")
TEMPLATE_KEYS: tuple[str, ...] = (
    "opt_out_hint",
    "subject",
    "invite_sms_link",
    "invite_sms_dialog",
    "reminder_sms_link",
    "reminder_sms_dialog",
    "question",
    "reprompt",
    "thanks",
    "already_completed",
    "closed",
    "use_link",
    "opted_out",
    "opted_in",
)
# Replies that must fit one SMS part: a citizen's phone shows them whole, and they cost one.
ONE_PART_KEYS: tuple[str, ...] = ("thanks", "already_completed", "closed", "opted_out", "opted_in")
BREVITY_LEVELS: tuple[int, ...] = (0, 1, 2)

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
ELLIPSIS = "…"
_GREGORIAN_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


class MessageTooLong(InvalidInput):
    """A text that needs more SMS parts than allowed."""


@dataclass(frozen=True, slots=True)
class SmsParts:
    """How a text travels: `encoding` ('gsm7' or 'ucs2'), its length in septets or UTF-16
    code units, and the number of SMS parts."""

    encoding: str
    units: int
    parts: int


@dataclass(frozen=True, slots=True)
class Sender:
    """Who is asking and about what, in one language: the agency's names to try (best first,
    see `agency_names`), the service's name and the transaction's day (each named where it
    fits)."""

    agency: tuple[str, ...]
    service: str | None = None
    day: date | None = None


def count_parts(text: str) -> SmsParts:
    """The encoding and number of SMS parts of `text` (see the module docstring)."""
    if _GSM7.issuperset(text):
        if GSM7_EXTENSION.isdisjoint(text):  # one septet each: plain arithmetic
            return SmsParts("gsm7", len(text), _even_parts(len(text), GSM7_SINGLE, GSM7_PART))
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SmsParts("gsm7", sum(sizes), _parts(sizes, GSM7_SINGLE, GSM7_PART))
    if not text or max(text) <= "\uffff":  # no surrogate pairs: one code unit each
        return SmsParts("ucs2", len(text), _even_parts(len(text), UCS2_SINGLE, UCS2_PART))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsParts("ucs2", sum(sizes), _parts(sizes, UCS2_SINGLE, UCS2_PART))


def _even_parts(units: int, single: int, per_part: int) -> int:
    return 1 if units <= single else -(-units // per_part)


def _parts(sizes: list[int], single: int, per_part: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:  # a character (escape pair, surrogate pair) is never split
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts


# -- agencies' names and days --------------------------------------------------------------------


def sms_name_problem(name: str, lang: str) -> str | None:
    """Why `name` cannot be an agency's SMS name in `lang`, or None when it can."""
    if not name.strip():
        return "is empty; leave it out (or null) to use the agency's full name"
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        return "contains a control character (such as a line break); remove it"
    if len(name) > SMS_NAME_MAX:
        return (
            f"must be at most {SMS_NAME_MAX} characters (every invitation starts with it and "
            f"must fit two SMS parts beside the link); got {len(name)}"
        )
    if lang == "en" and count_parts(name).encoding != "gsm7":
        return (
            "must use only GSM-7 characters (Latin letters, digits, common punctuation): "
            "another character makes every English SMS UCS-2, 70 characters a part instead "
            "of 160"
        )
    return None


def agency_names(sms_name: str | None, full_name: str) -> tuple[str, ...]:
    """The names to try, best first: the agency's SMS name when it has one; else its full
    name and, when that is longer than `SMS_NAME_MAX`, its first words with '…', fewer and
    fewer down to the first that is at most `SMS_NAME_MAX` long (so that one always exists)."""
    if sms_name and sms_name.strip():
        return (" ".join(sms_name.split()),)
    full = " ".join(full_name.split())
    if len(full) <= SMS_NAME_MAX:
        return (full,)
    # '…' is not GSM-7: a Latin name ends with '...' so that its SMS stays 160 a part
    ellipsis = ELLIPSIS if count_parts(full).encoding == "ucs2" else "..."
    words = full.split()
    names = [full]
    for count in range(len(words) - 1, 0, -1):
        name = " ".join(words[:count]) + ellipsis
        names.append(name)
        if len(name) <= SMS_NAME_MAX:
            return tuple(names)
    return (*names, full[: SMS_NAME_MAX - len(ellipsis)] + ellipsis)


def sms_day(day: date, lang: str) -> str:
    """A transaction's day as an SMS names it: «۱۳ آبان» in Persian, "13 Aban (4 Nov)" in
    English (no year: the transaction was days ago)."""
    solar = jdatetime.date.fromgregorian(date=day)
    if lang == "fa":
        return f"{persian_digits(str(solar.day))} {jdatetime.date.j_months_fa[solar.month - 1]}"
    month = jdatetime.date.j_months_en[solar.month - 1]
    return f"{solar.day} {month} ({day.day} {_GREGORIAN_MONTHS[day.month - 1]})"


# -- texts ---------------------------------------------------------------------------------------


@cache
def _templates(lang: str) -> dict[str, jinja2.Template]:
    if lang not in LANGUAGES:
        raise InvalidInput(
            f"language {lang!r} has no SMS texts; expected one of {', '.join(LANGUAGES)}",
            [Problem(f"expected one of {', '.join(LANGUAGES)}; got {lang!r}", field="language")],
        )
    source = resources.files("survey.kernel").joinpath(f"sms_texts/{lang}.yaml")
    table = yaml.safe_load(source.read_text("utf-8"))
    missing = [key for key in TEMPLATE_KEYS if not isinstance(table.get(key), str)]
    if missing:
        raise InvalidInput(
            f"SMS texts sms_texts/{lang}.yaml lack {', '.join(missing)}",
            [Problem("missing or not a text", field=key) for key in missing],
        )
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return {key: environment.from_string(table[key]) for key in TEMPLATE_KEYS}


def render(key: str, lang: str, **values: Any) -> str:
    """One text from the language's template file, whitespace-normalised within lines."""
    templates = _templates(lang)
    if key not in templates:
        raise KeyError(f"no SMS template {key!r}; known: {', '.join(TEMPLATE_KEYS)}")
    text = templates[key].render(**values)
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def render_invitation(
    kind: str,
    mode: str,
    lang: str,
    *,
    sender: Sender,
    url: str | None = None,
    question: str | None = None,
    max_parts: int = MAX_INVITATION_PARTS,
) -> str:
    """An invitation, reminder or dialogue opening that names the agency, ending with the
    opt-out hint, in at most `max_parts` parts: the richest text that fits (module
    docstring); `MessageTooLong` when none does."""
    if kind not in INVITATION_KINDS:
        raise ValueError(f"kind must be one of {INVITATION_KINDS}; got {kind!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if mode == "sms_link" and not url:
        raise ValueError("an sms_link invitation needs the answering url")
    if mode == "sms_dialog" and not question:
        raise ValueError("an sms_dialog invitation needs the first question's prompt")
    if not sender.agency or not all(name.strip() for name in sender.agency):
        raise ValueError("an invitation needs the agency's name")
    hint = _opt_out_hint(lang)
    text = ""
    for values in _variants(sender, lang):
        body = render(f"{kind}_{mode}", lang, url=url, question=question, **values)
        text = f"{body}\n{hint}"
        if count_parts(text).parts <= max_parts:
            return text
    measured = count_parts(text)  # the leanest text: the last name, no service or day
    raise MessageTooLong(
        f"the {lang} {kind} for {mode} needs {measured.parts} SMS parts ({measured.units} "
        f"{measured.encoding} units) even with only the agency's name "
        f"{sender.agency[-1]!r}; at most {max_parts} allowed",
        [Problem(f"{measured.parts} parts; at most {max_parts}", field=f"{kind}_{mode}.{lang}")],
    )


@cache
def _opt_out_hint(lang: str) -> str:
    return render("opt_out_hint", lang)


def _variants(sender: Sender, lang: str) -> Iterator[dict[str, Any]]:
    day = sms_day(sender.day, lang) if sender.day is not None else ""
    service = (sender.service or "").strip()
    # the service says more than the day; without either the text asks about "the service
    # you received"
    details = dict.fromkeys([(service, day), (service, ""), ("", day), ("", "")])
    for name in sender.agency:
        for named_service, named_day in details:
            subject = render("subject", lang, service=named_service, day=named_day)
            for brevity in BREVITY_LEVELS:
                yield {
                    "agency": name,
                    "service": named_service,
                    "day": named_day,
                    "subject": subject,
                    "specific": bool(named_service or named_day),
                    "brevity": brevity,
                }


def invitation_problems(
    questionnaire: Any,
    mode: str,
    *,
    public_base_url: str,
    senders: Mapping[str, Sender],
    languages: Iterable[str] = LANGUAGES,
    token_length: int = 16,
) -> list[str]:
    """What cannot be sent for this questionnaire in this mode, with the agency's names, for
    the real link: every invitation and reminder (a reminder may re-ask any SMS item) in every
    language, each must fit in two parts. Empty when all fit.

    `questionnaire` is a `questionnaires.Questionnaire`; the token stands in at its real length.
    """
    from questionnaires.rendering import sms_prompt

    url = f"{public_base_url.rstrip('/')}/s/{'x' * token_length}"
    problems: list[str] = []
    for lang in languages:
        if mode == "sms_dialog" and not questionnaire.sms:
            return ["has no SMS items, so it cannot be answered by SMS"]
        prompts: Sequence[tuple[str, str]] = (
            [(item_id, sms_prompt(questionnaire, item_id, lang)) for item_id in questionnaire.sms]
            if mode == "sms_dialog"
            else [("", "")]
        )
        for kind in INVITATION_KINDS:
            # the invitation asks the first item; a reminder may re-ask any of them
            for item_id, prompt in prompts[:1] if kind == "invite" else prompts:
                try:
                    render_invitation(
                        kind, mode, lang, sender=senders[lang], url=url, question=prompt or None
                    )
                except MessageTooLong as exc:
                    where = f"item {item_id}, " if item_id else ""
                    problems.append(f"{where}{exc.message}")
    return problems
