"""The web answering page and SMS question texts, in Persian (right to left) or English.

The page is plain HTML (Jinja2, autoescaped): no JavaScript, real labels and fieldsets,
large tap targets. Display conditions are applied on the server: an item whose condition
does not hold for the answers given so far is left out. Fixed phrases ("Yes", "Send", SMS
reply hints) live in ``templates/phrases.yaml``, not in code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from questionnaires.conditions import NOT_APPLICABLE, answer_codes, is_missing
from questionnaires.phrases import check_lang as _check_lang
from questionnaires.phrases import localise_digits, phrases
from questionnaires.schema import LANGUAGES, NO, YES, Item, ItemType, Questionnaire


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("questionnaires", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def stylesheet() -> str:
    """The page's CSS (the service may serve it as a file and pass ``stylesheet_url``)."""
    return resources.files("questionnaires").joinpath("templates/form.css").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class _Option:
    value: str
    label: str
    checked: bool
    dom_id: str


@dataclass(frozen=True, slots=True)
class _View:
    id: str
    text: str
    required: bool
    input: str
    scale: bool
    options: tuple[_Option, ...] | None
    hint: str
    error: str
    value: str
    max_length: int


def render_form(
    questionnaire: Questionnaire,
    lang: str,
    *,
    answers: Mapping[str, Any] | None = None,
    action_url: str = "",
    csrf_token: str = "",
    hidden: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    language_url: str | None = None,
    stylesheet_url: str | None = None,
    save_label: str = "",
    notice: str = "",
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """A complete HTML page for answering ``questionnaire`` in ``lang`` ("fa" or "en").

    ``answers`` (item id -> stored answer) pre-fills the form and decides which conditional
    items show. ``errors`` maps item ids to messages shown at the item (key ``"_form"`` for
    a message at the top). The CSRF token goes in the hidden field ``_csrf_token`` (Litestar's
    default name). ``language_url`` defaults to ``?lang=<other language>``; without
    ``stylesheet_url`` the CSS is inlined (fine for previews; a strict CSP wants the URL).

    For the answering service: ``save_label`` adds a "save for later" button (it posts
    ``action=save`` and skips the browser's required checks; the send button then posts
    ``action=submit``), ``notice`` a status line above the form (e.g. "Saved"), and
    ``links`` (href, text) pairs below it (e.g. the opt-out link). Texts are escaped.
    """
    _check_lang(lang)
    given = dict(answers or {})
    problems = dict(errors or {})
    other = next(code for code in LANGUAGES if code != lang)
    words = phrases(lang)
    views = [
        _view(item, lang, given.get(item.id), problems.get(item.id, ""), words)
        for item in questionnaire.visible_items(given)
    ]
    template = _environment().get_template("form.html.j2")
    return template.render(
        lang=lang,
        phrases=words,
        other_lang=other,
        other_phrases=phrases(other),
        language_url=language_url if language_url is not None else f"?lang={other}",
        title=questionnaire.title[lang],
        intro=questionnaire.intro[lang],
        items=views,
        action_url=action_url,
        csrf_token=csrf_token,
        hidden=sorted((hidden or {}).items()),
        form_error=problems.get("_form", words["form_error"] if problems else ""),
        stylesheet_url=stylesheet_url,
        css=stylesheet(),
        save_label=save_label,
        notice=notice,
        links=list(links),
    )


def _view(item: Item, lang: str, answer: Any, error: str, words: Mapping[str, str]) -> _View:
    chosen = answer_codes(answer) or set()
    options: list[tuple[str, str]] | None = None
    hint = ""
    if item.type is ItemType.likert5 and item.ends is not None:
        options = [(str(c), str(c)) for c in item.codes]
        options[0] = ("1", f"1 – {item.ends.low[lang]}")
        options[-1] = ("5", f"5 – {item.ends.high[lang]}")
    elif item.type is ItemType.rating0_10:
        options = [(str(c), str(c)) for c in item.codes]
        if item.ends is not None:
            hint = words["rating_ends"].format(
                first="0", last="10", low=item.ends.low[lang], high=item.ends.high[lang]
            )
    elif item.type is ItemType.yes_no:
        options = [(str(YES), words["yes"]), (str(NO), words["no"])]
    elif item.choices is not None:
        options = [(str(c.code), c.label[lang]) for c in item.choices]
    else:
        hint = words["text_limit"].format(n=item.max_length)
    rendered: tuple[_Option, ...] | None = None
    if options is not None:
        if item.not_applicable:
            options.append((NOT_APPLICABLE, words["not_applicable"]))
        rendered = tuple(
            _Option(
                value=value,
                label=localise_digits(label, lang),
                checked=(value == NOT_APPLICABLE and answer == NOT_APPLICABLE)
                or (value != NOT_APPLICABLE and int(value) in chosen),
                dom_id=f"field-{item.id}-{value}",
            )
            for value, label in options
        )
    return _View(
        id=item.id,
        text=item.text[lang],
        required=item.required,
        input="checkbox" if item.type is ItemType.multi_choice else "radio",
        scale=item.type is ItemType.rating0_10,
        options=rendered,
        hint=localise_digits(hint, lang),
        error=error,
        value="" if is_missing(answer) or options is not None else str(answer),
        max_length=item.max_length or 0,
    )


def sms_prompt(questionnaire: Questionnaire, item_id: str, lang: str) -> str:
    """The text of one SMS question with its one-digit reply hint.

    Raises KeyError for an unknown item and ValueError for an item one digit cannot answer.
    Digits are Persian in ``fa`` (replies in Persian, Arabic-Indic or Latin digits are all
    the answering service's to accept).
    """
    _check_lang(lang)
    item = questionnaire.item(item_id)
    if not item.sms_answerable:
        raise ValueError(
            f"item {item_id!r} is {item.type.value}; one digit cannot answer it, so it has no "
            "SMS prompt (use likert5, yes_no, or single_choice with codes 1-9)"
        )
    words = phrases(lang)
    text = item.text[lang]
    if item.type is ItemType.likert5 and item.ends is not None:
        prompt = words["sms_scale"].format(
            text=text, first="1", last="5", low=item.ends.low[lang], high=item.ends.high[lang]
        )
    elif item.type is ItemType.yes_no:
        prompt = words["sms_yes_no"].format(text=text)
    else:
        pairs = [
            words["sms_choice"].format(code=c.code, label=c.label[lang]) for c in item.choices or ()
        ]
        prompt = words["sms_choices"].format(
            text=text, choices=words["sms_choice_separator"].join(pairs)
        )
    return localise_digits(prompt, lang)
