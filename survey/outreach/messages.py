"""SMS texts per language, from `templates/{fa,en}.yaml`, and how many SMS parts they take.

The languages are the platform's (`survey.kernel.locale.LANGUAGES`, re-exported here): each
needs its template file.

Part counting follows GSM 03.38 / 3GPP TS 23.038:
- a text made only of GSM-7 characters is 7-bit: 160 septets in one part, 153 per part when
  split (the rest of each part holds the concatenation header); the extension characters
  (`^ { } \\ [ ~ ] | €` and form feed) take two septets and are never split across parts;
- any other character (every Persian letter and digit) makes the whole text UCS-2: 70 UTF-16
  code units in one part, 67 per part when split; a surrogate pair is never split.

Invitations and reminders end with the opt-out hint (`لغو۱۱`, "STOP: 11") that Iranian
service numbers must carry, and may use at most `MAX_INVITATION_PARTS` parts: a text that
does not fit is rendered again without the agency's name, and if it still does not fit,
`MessageTooLong` says which questionnaire, item and language are at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml

from survey.errors import InvalidInput, Problem
from survey.kernel.locale import LANGUAGES

__all__ = [
    "INVITATION_KINDS",
    "LANGUAGES",
    "MAX_INVITATION_PARTS",
    "MessageTooLong",
    "SmsParts",
    "check_invitation_fits",
    "count_parts",
    "render",
    "render_invitation",
]

MAX_INVITATION_PARTS = 2
INVITATION_KINDS: tuple[str, ...] = ("invite", "reminder")
MODES: tuple[str, ...] = ("sms_link", "sms_dialog")
TEMPLATE_KEYS: tuple[str, ...] = (
    "opt_out_hint",
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

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class MessageTooLong(InvalidInput):
    """A text that needs more SMS parts than allowed."""


@dataclass(frozen=True, slots=True)
class SmsParts:
    """How a text travels: `encoding` ('gsm7' or 'ucs2'), its length in septets or UTF-16
    code units, and the number of SMS parts."""

    encoding: str
    units: int
    parts: int


def count_parts(text: str) -> SmsParts:
    """The encoding and number of SMS parts of `text` (see the module docstring)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SmsParts("gsm7", sum(sizes), _parts(sizes, GSM7_SINGLE, GSM7_PART))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsParts("ucs2", sum(sizes), _parts(sizes, UCS2_SINGLE, UCS2_PART))


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


@cache
def _templates(lang: str) -> dict[str, jinja2.Template]:
    if lang not in LANGUAGES:
        raise InvalidInput(
            f"language {lang!r} has no SMS texts; expected one of {', '.join(LANGUAGES)}",
            [Problem(f"expected one of {', '.join(LANGUAGES)}; got {lang!r}", field="language")],
        )
    source = resources.files("survey.outreach").joinpath(f"templates/{lang}.yaml")
    table = yaml.safe_load(source.read_text("utf-8"))
    missing = [key for key in TEMPLATE_KEYS if not isinstance(table.get(key), str)]
    if missing:
        raise InvalidInput(
            f"SMS templates templates/{lang}.yaml lack {', '.join(missing)}",
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
    url: str | None = None,
    question: str | None = None,
    agency: str | None = None,
    max_parts: int = MAX_INVITATION_PARTS,
) -> str:
    """An invitation or reminder ending with the opt-out hint, in at most `max_parts` parts.

    Tries with the agency's name first, then without; raises `MessageTooLong` otherwise.
    """
    if kind not in INVITATION_KINDS:
        raise ValueError(f"kind must be one of {INVITATION_KINDS}; got {kind!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if mode == "sms_link" and not url:
        raise ValueError("an sms_link invitation needs the answering url")
    if mode == "sms_dialog" and not question:
        raise ValueError("an sms_dialog invitation needs the first question's prompt")
    hint = render("opt_out_hint", lang)
    text = ""
    for name in (agency, None) if agency else (None,):
        body = render(f"{kind}_{mode}", lang, url=url, question=question, agency=name)
        text = f"{body}\n{hint}"
        if count_parts(text).parts <= max_parts:
            return text
    measured = count_parts(text)
    raise MessageTooLong(
        f"the {lang} {kind} for {mode} needs {measured.parts} SMS parts "
        f"({measured.units} {measured.encoding} units); at most {max_parts} allowed",
        [Problem(f"{measured.parts} parts; at most {max_parts}", field=f"{kind}_{mode}.{lang}")],
    )


def check_invitation_fits(
    questionnaire: Any,
    mode: str,
    *,
    public_base_url: str,
    languages: Iterable[str] = LANGUAGES,
    token_length: int = 16,
) -> None:
    """Fail loudly (MessageTooLong listing every case) when an invitation or reminder for this
    questionnaire and mode cannot fit in two parts, for the longest link and any SMS item.

    `questionnaire` is a `questionnaires.Questionnaire`; call this when a plan is validated.
    """
    from questionnaires.rendering import sms_prompt

    url = f"{public_base_url.rstrip('/')}/s/{'x' * token_length}"
    problems: list[Problem] = []
    for lang in languages:
        prompts: Mapping[str, str] = (
            {item_id: sms_prompt(questionnaire, item_id, lang) for item_id in questionnaire.sms}
            if mode == "sms_dialog"
            else {"": ""}
        )
        if mode == "sms_dialog" and not prompts:
            problems.append(
                Problem("has no SMS items, so it cannot be answered by SMS", field="sms")
            )
            continue
        for kind in INVITATION_KINDS:
            # the invitation asks the first item; a reminder may re-ask any of them
            items = list(prompts.items())[:1] if kind == "invite" else list(prompts.items())
            for item_id, prompt in items:
                try:
                    render_invitation(kind, mode, lang, url=url, question=prompt or None)
                except MessageTooLong as exc:
                    where = f"item {item_id}, " if item_id else ""
                    problems.append(Problem(f"{where}{lang} {kind}: {exc.message}", field=mode))
    if problems:
        raise MessageTooLong(
            f"questionnaire {questionnaire.id!r} in mode {mode}: SMS texts too long",
            problems,
        )
