"""The demo's survey round: invitations through the `file` gateway, simulated citizens
answering through the real service, and the response rates that result.

Three steps, each its own function so `survey.demo.seed.run_demo` reads as the story it tells:

1. `send_invitations`: the real dispatcher creates invitations for the new sampled units and
   sends them through a `file:` gateway (always a file: the demo's phone numbers are made up,
   so it never sends through a real provider).
2. `simulate_citizens`: citizens read their SMS from that file and act as
   `survey/demo/data/demo-citizens.yaml` says: some answer on the web (GET and POST `/s/TOKEN`
   through the real app, with its CSRF cookie; some save half and resume later), some answer
   the SMS dialogue by replies signed and posted to `POST /api/v1/sms/inbound` (digits in
   Latin, Persian and Arabic-Indic forms, some first replies unreadable), some opt out (page
   or `لغو۱۱`), many do nothing. The provider's delivery reports go to `/api/v1/sms/status`.
3. `rate_summary`: AAPOR rates (survey.results.rates) over the stream's days, by agency.

The round runs at one simulated moment: now, or when now is inside the plan's quiet hours
(Tehran), the end of them, since no invitation may leave earlier. Choices are drawn from a
generator seeded with the demo's seed and run, so a fresh database gets the same round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import yaml

from questionnaires.schema import Item, ItemType, Questionnaire
from survey.answering.webhooks import signature_for
from survey.context import AppContext
from survey.demo import store
from survey.kernel.locale import ARABIC_INDIC_DIGITS, persian_digits
from survey.kernel.periods import Period, solar_month_of, tehran_day
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.file import FileGateway
from survey.outreach.schedule import next_allowed
from survey.results.rates import RateTable, response_rates

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = [
    "CitizenReport",
    "InvitationRound",
    "RateSummary",
    "demo_sms_file",
    "rate_summary",
    "send_invitations",
    "simulate_citizens",
    "survey_moment",
]

DEFAULT_SMS_FILE = "demo-sms.jsonl"
SERVICE_LINE = "3000123"  # the demo's SMS service number citizens reply to
_LINK = re.compile(r"/s/([a-z2-7]{16})\b")
_CSRF = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
MAX_DIALOG_ROUNDS = 12
DELIVERY_REPORT_SHARE = 0.5
PROVIDER_ADDRESS = "192.0.2.10"  # the SMS provider's server, calling the webhooks


def demo_sms_file(settings: Any) -> Path:
    """Where the demo's SMS go: the `file:` gateway's path if one is configured, else
    `var/demo-sms.jsonl` (never a real provider)."""
    kind, _, rest = str(settings.sms_gateway).partition(":")
    if kind == "file" and rest:
        return Path(rest)
    return Path(settings.var_dir) / DEFAULT_SMS_FILE


def survey_moment(context: AppContext, now: datetime) -> datetime:
    """`now`, or the end of the quiet hours of the plan in force when now is inside them."""
    with context.read_sessions() as session:
        quiet = store.quiet_hours_in_force(session, tehran_day(now))
    return next_allowed(now, quiet, context.settings.timezone)


def _round_context(context: AppContext, moment: datetime, sms_file: Path) -> AppContext:
    """The context the round runs in: its clock stopped at `moment`, SMS to the file, and no
    dispatcher inside the in-process app (the round drives its own)."""
    settings = context.settings.with_overrides(
        sms_gateway=f"file:{sms_file.as_posix()}", dispatch_in_serve=False
    )
    return dataclasses.replace(context, settings=settings, clock=lambda: moment)


# -- 1. invitations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationRound:
    """What the dispatcher did, and the context (clock, gateway) the round runs in."""

    context: AppContext = field(repr=False)
    sms_file: Path
    moment: datetime
    delayed_by_quiet_hours: bool
    first_invitation_id: int
    invited: int
    sent: int
    opted_out_before: int


def _dispatcher(context: AppContext, sms_file: Path) -> Dispatcher:
    # No pacing: the file stands in for the provider, whose own limit is the real one.
    options = DispatchOptions(rate_per_second=1e9, max_messages_per_pass=1_000_000)
    return Dispatcher(context, FileGateway(sms_file), options=options, worker_id="demo")


def send_invitations(context: AppContext, sms_file: Path) -> InvitationRound:
    """Invite every pending sampled unit through the file gateway."""
    now = context.clock()
    moment = survey_moment(context, now)
    round_context = _round_context(context, moment, sms_file)
    with context.read_sessions() as session:
        first = store.highest_invitation_id(session) + 1
    dispatcher = _dispatcher(round_context, sms_file)
    try:
        report = dispatcher.run_once()
    finally:
        dispatcher.gateway.close()
    with context.read_sessions() as session:
        opted_out = store.opted_out_since(session, first)
    return InvitationRound(
        context=round_context,
        sms_file=sms_file,
        moment=moment,
        delayed_by_quiet_hours=moment > now,
        first_invitation_id=first,
        invited=report.invited,
        sent=report.sent,
        opted_out_before=opted_out,
    )


# -- 2. citizens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CitizenBehaviour:
    """survey/demo/data/demo-citizens.yaml, parsed."""

    link: dict[str, float]
    dialog: dict[str, float]
    satisfaction: dict[str, float]
    response: dict[str, float]
    channel_shift: dict[str, float]
    reply_forms: list[str]
    misread_replies: list[str]
    opt_out_replies: list[str]
    comments: dict[str, list[str]]

    @classmethod
    def load(cls) -> CitizenBehaviour:
        text = (resources.files("survey.demo") / "data" / "demo-citizens.yaml").read_text("utf-8")
        raw = yaml.safe_load(text)
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


@dataclass
class CitizenReport:
    """What the simulated citizens did (counts by action)."""

    actions: Counter[str] = field(default_factory=Counter)
    web_requests: int = 0
    sms_replies: int = 0
    delivery_reports: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def count(self, action: str) -> int:
        return self.actions[action]


@dataclass
class _Citizen:
    invitation_id: int
    phone: str
    language: str
    mode: str
    agency: str
    channel: str
    action: str
    mood: float
    token: str = ""
    questionnaire: Questionnaire | None = None
    answers_left: int = 0
    misread: bool = False
    replies: int = 0
    answered: int = 0


class _SmsFile:
    """Reads the gateway file as citizens' phones would: the lines added since last time."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def new_lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].decode("utf-8").splitlines() if line]


def simulate_citizens(
    invitations: InvitationRound, *, seed: int, run: int, behaviour: CitizenBehaviour | None = None
) -> CitizenReport:
    """Let the citizens of this round's invitations react, through the real app."""
    from survey.app import create_app

    rules = behaviour or CitizenBehaviour.load()
    rng = np.random.default_rng([seed, run, 4])
    context = invitations.context
    inbox = _SmsFile(invitations.sms_file)
    messages = [m for m in inbox.new_lines() if m["kind"] == "invite"]
    citizens = _cast(context, messages, invitations.first_invitation_id, rules, rng)
    report = CitizenReport()
    app = create_app(context.settings, context=context)
    loop = asyncio.new_event_loop()
    provider = _Client(loop, app, PROVIDER_ADDRESS)
    try:
        with _quiet_logs():
            _delivery_reports(provider, context, citizens, rng, report)
            for citizen in citizens:
                report.actions[f"{citizen.mode}:{citizen.action}"] += 1
                if citizen.mode == "sms_link" and citizen.action not in ("undelivered", "silent"):
                    phone = _Client(loop, app, _address(citizen.invitation_id))
                    try:
                        _answer_on_the_web(phone, citizen, rules, rng, report)
                    finally:
                        phone.close()
            _sms_dialogues(
                provider, context, invitations.sms_file, inbox, citizens, rules, rng, report
            )
    finally:
        provider.close()
        loop.close()
    return report


class _Client:
    """Synchronous calls into the app through ASGI on a private event loop in this thread
    (no server, no thread hops), from one client address: a citizen's phone or the SMS
    provider. Each has its own cookies, and the service's per-address limits apply."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Litestar, address: str) -> None:
        self._loop = loop
        # httpx types an ASGI app's messages as plain dicts, Litestar as TypedDicts: the same
        # dicts at run time.
        asgi_app: Any = app
        transport = httpx.ASGITransport(app=asgi_app, client=(address, 50000))
        # https, as citizens reach a production service: its cookies are Secure there.
        self._client = httpx.AsyncClient(transport=transport, base_url="https://demo.invalid")

    def get(self, path: str) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(path))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(path, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())


def _address(invitation_id: int) -> str:
    """A distinct private address per citizen (each answers from their own phone)."""
    return f"10.{(invitation_id >> 16) & 255}.{(invitation_id >> 8) & 255}.{invitation_id & 255}"


def _cast(
    context: AppContext,
    messages: list[dict[str, Any]],
    first_id: int,
    rules: CitizenBehaviour,
    rng: np.random.Generator,
) -> list[_Citizen]:
    """One citizen per invitation sent in this round, with the action they will take."""
    ids = sorted({int(m["invitation_id"]) for m in messages if m["invitation_id"] >= first_id})
    by_id = {int(m["invitation_id"]): m for m in messages}
    if not ids:
        return []
    with context.read_sessions() as session:
        rows = store.citizen_rows(session, ids)
        versions = {
            v.id: Questionnaire.from_dict(v.content)
            for v in store.questionnaire_versions(
                session, {r.questionnaire_version_id for r in rows}
            )
            if v.id is not None  # stored rows have ids
        }
    draws = rng.random(len(rows))
    moods = rng.normal(0.0, 0.7, len(rows))
    citizens = []
    for row, draw, noise in zip(rows, draws, moods, strict=True):
        shares = rules.link if row.mode == "sms_link" else rules.dialog
        factor = float(rules.response.get(row.code, rules.response["default"]))
        action = _pick(shares, factor, float(draw))
        mood = (
            float(rules.satisfaction.get(row.code, rules.satisfaction["default"]))
            + float(rules.channel_shift.get(row.channel, 0.0))
            + float(noise)
        )
        message = by_id[int(row.id)]
        link = _LINK.search(str(message["text"]))
        citizens.append(
            _Citizen(
                invitation_id=int(row.id),
                phone=str(message["to"]),
                language=str(row.language),
                mode=str(row.mode),
                agency=str(row.code),
                channel=str(row.channel),
                action=action,
                mood=mood,
                token=link[1] if link else "",
                questionnaire=versions[int(row.questionnaire_version_id)],
            )
        )
    return citizens


def _pick(shares: dict[str, float], factor: float, draw: float) -> str:
    """The action whose cumulative share the draw falls in; `silent` when none."""
    edge = 0.0
    for action in ("undelivered", "complete", "partial", "open_only", "opt_out"):
        share = float(shares.get(action, 0.0))
        if action in ("complete", "partial"):
            share *= factor
        edge += share
        if draw < edge:
            return action
    return "silent"


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """One log line per simulated request would bury the demo's summary."""
    loggers = [logging.getLogger(n) for n in ("httpx", "survey.sms.dialog", "survey.dispatch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _delivery_reports(
    client: _Client,
    context: AppContext,
    citizens: list[_Citizen],
    rng: np.random.Generator,
    report: CitizenReport,
) -> None:
    """The provider reports every undelivered invitation, and about half the delivered ones
    (the others stay `sent`, as when a provider's report has not come yet)."""
    secret = context.settings.sms_webhook_secret
    for citizen in citizens:
        if citizen.action == "undelivered":
            status = "undelivered"
        elif rng.random() < DELIVERY_REPORT_SHARE:
            status = "delivered"
        else:
            continue
        body = json.dumps({"local_id": f"inv{citizen.invitation_id}-invite", "status": status})
        _signed_post(client, "/api/v1/sms/status", body, secret)
        report.delivery_reports += 1


def _signed_post(client: _Client, path: str, body: str, secret: bytes) -> dict[str, Any]:
    """A webhook call as the provider makes it; a 429 is honoured (wait, then retry)."""
    raw = body.encode()
    headers = {"Content-Type": "application/json", "X-Survey-Signature": signature_for(secret, raw)}
    response = client.post(path, content=raw, headers=headers)
    for _ in range(10):
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("retry-after", "1")))
        response = client.post(path, content=raw, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"demo: {path} answered {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()
    return result


# -- web answering -----------------------------------------------------------------------------


def _answer_on_the_web(
    client: _Client,
    citizen: _Citizen,
    rules: CitizenBehaviour,
    rng: np.random.Generator,
    report: CitizenReport,
) -> None:
    path = f"/s/{citizen.token}"
    page = _get_form(client, path, report)
    if citizen.action == "open_only":
        return
    if citizen.action == "opt_out":
        confirm = client.get(f"{path}/opt-out")
        report.web_requests += 1
        _post_form(client, f"{path}/opt-out", _csrf(confirm.text), {}, report, expect=200)
        return
    assert citizen.questionnaire is not None
    answers = _web_answers(citizen.questionnaire, citizen, rules, rng)
    if citizen.action == "partial":
        half = dict(list(answers.items())[: max(1, len(answers) // 3)])
        _post_form(client, path, _csrf(page), {**half, "action": ["save"]}, report)
        return
    if rng.random() < float(rules.link.get("save_then_resume", 0.0)):
        half = dict(list(answers.items())[: max(1, len(answers) // 2)])
        _post_form(client, path, _csrf(page), {**half, "action": ["save"]}, report)
        # Later the same link resumes the form, pre-filled: the browser sends it all again.
        page = _get_form(client, path, report)
    _post_form(client, path, _csrf(page), {**answers, "action": ["submit"]}, report)


def _get_form(client: _Client, path: str, report: CitizenReport) -> str:
    response = client.get(path)
    report.web_requests += 1
    if response.status_code != 200:
        raise RuntimeError(f"demo: GET {path[:4]}... answered {response.status_code}")
    return response.text


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    if found is None:
        raise RuntimeError("demo: the answering page has no CSRF field")
    return found[1]


def _post_form(
    client: _Client,
    path: str,
    csrf: str,
    fields: dict[str, list[str]],
    report: CitizenReport,
    *,
    expect: int = 303,
) -> None:
    form: dict[str, str | list[str]] = {"_csrf_token": csrf, **fields}
    response = client.post(path, data=form, follow_redirects=False)
    report.web_requests += 1
    if response.status_code != expect:
        raise RuntimeError(f"demo: POST to an answering page answered {response.status_code}")


def _score(mood: float, rng: np.random.Generator) -> int:
    """A 1-5 answer scattered around the citizen's mood."""
    return int(np.clip(np.rint(mood + rng.normal(0.0, 0.6)), 1, 5))


def _web_answers(
    questionnaire: Questionnaire,
    citizen: _Citizen,
    rules: CitizenBehaviour,
    rng: np.random.Generator,
) -> dict[str, list[str]]:
    """Form fields for every item the citizen sees, in order (conditions follow answers)."""
    given: dict[str, Any] = {}
    fields: dict[str, list[str]] = {}
    for item in questionnaire.items:
        if item.condition is not None and not item.condition.holds(given):
            continue
        value = _item_answer(item, citizen, rules, rng)
        if value is None:
            continue
        fields[item.id] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if isinstance(value, int):
            given[item.id] = value
        elif isinstance(value, list):
            given[item.id] = " ".join(str(v) for v in value)
    return fields


def _item_answer(
    item: Item, citizen: _Citizen, rules: CitizenBehaviour, rng: np.random.Generator
) -> int | str | list[int] | None:
    if item.not_applicable and rng.random() < 0.06:
        return "na"
    if item.type is ItemType.likert5:
        return _score(citizen.mood, rng)
    if item.type is ItemType.rating0_10:
        return int(np.clip(np.rint((citizen.mood - 1) * 2.5 + rng.normal(0, 1.2)), 0, 10))
    if item.type is ItemType.yes_no:
        return 1 if rng.random() < (citizen.mood - 1) / 4 else 2
    codes = list(item.codes)
    if item.type is ItemType.single_choice and codes:
        # Lower codes are the better outcomes in the bundled questionnaires.
        weights = np.exp(-np.arange(len(codes)) * (citizen.mood - 1.5) / 2)
        return int(rng.choice(codes, p=weights / weights.sum()))
    if item.type is ItemType.multi_choice and codes:
        chosen = sorted(int(c) for c in codes if rng.random() < 0.3)
        return chosen or None
    if item.type is ItemType.text and rng.random() < 0.15:
        options = rules.comments.get(citizen.language) or rules.comments["fa"]
        return str(options[int(rng.integers(len(options)))])
    return None


# -- SMS dialogues -----------------------------------------------------------------------------


def _sms_dialogues(
    client: _Client,
    context: AppContext,
    sms_file: Path,
    inbox: _SmsFile,
    citizens: list[_Citizen],
    rules: CitizenBehaviour,
    rng: np.random.Generator,
    report: CitizenReport,
) -> None:
    """Reply round by round: each reply is posted to the webhook, then the dispatcher sends
    the service's answer (the next question, a re-prompt, the thanks) to the file."""
    talking = [
        c
        for c in citizens
        if c.mode == "sms_dialog" and c.action in ("complete", "partial", "opt_out")
    ]
    for citizen in talking:
        citizen.misread = citizen.action != "opt_out" and bool(
            rng.random() < float(rules.dialog.get("misread_first", 0.0))
        )
        citizen.answers_left = 99 if citizen.action == "complete" else int(rng.integers(1, 3))
    dispatcher = _dispatcher(context, sms_file)
    secret = context.settings.sms_webhook_secret
    try:
        for _ in range(MAX_DIALOG_ROUNDS):
            if not talking:
                break
            still: list[_Citizen] = []
            for citizen in talking:
                text = _reply_text(citizen, rules, rng)
                citizen.replies += 1
                body = json.dumps(
                    {
                        "from": _national(citizen.phone),
                        "to": SERVICE_LINE,
                        "text": text,
                        "message_id": f"demo-{citizen.invitation_id}-{citizen.replies}",
                    },
                    ensure_ascii=False,
                )
                outcome = str(_signed_post(client, "/api/v1/sms/inbound", body, secret)["outcome"])
                report.sms_replies += 1
                report.outcomes[outcome] += 1
                if outcome in ("answered", "completed"):
                    citizen.answered += 1
                if outcome in ("answered", "reprompted", "ignored") and citizen.answers_left > 0:
                    still.append(citizen)
            dispatcher.send_due()
            inbox.new_lines()  # the citizens' phones receive the service's answers
            talking = still
    finally:
        dispatcher.gateway.close()


def _reply_text(citizen: _Citizen, rules: CitizenBehaviour, rng: np.random.Generator) -> str:
    if citizen.action == "opt_out":
        return str(rules.opt_out_replies[int(rng.integers(len(rules.opt_out_replies)))])
    if citizen.misread:
        citizen.misread = False
        return str(rules.misread_replies[int(rng.integers(len(rules.misread_replies)))])
    assert citizen.questionnaire is not None
    items = citizen.questionnaire.sms_items
    item = items[min(citizen.answered, len(items) - 1)]
    citizen.answers_left -= 1
    if item.type is ItemType.yes_no:
        digit = "1" if rng.random() < (citizen.mood - 1) / 4 else "2"
    elif item.type is ItemType.likert5:
        digit = str(_score(citizen.mood, rng))
    else:
        digit = str(int(rng.choice(item.codes)))
    form = str(rules.reply_forms[int(rng.integers(len(rules.reply_forms)))])
    return form.format(d=digit, fa=persian_digits(digit), ar=_arabic_indic(digit))


def _arabic_indic(digits: str) -> str:
    """Latin digits as Arabic-Indic ones (as some phones type them)."""
    return "".join(ARABIC_INDIC_DIGITS[int(d)] for d in digits)


def _national(phone: str) -> str:
    """Providers push the sender as the national number (`0912...`)."""
    return "0" + phone[3:] if phone.startswith("+98") else phone


# -- 3. rates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateSummary:
    """AAPOR rates over the demo's days (`window`), and the Solar Hijri months they touch."""

    window: Period
    table: RateTable
    months: list[str]


def rate_summary(context: AppContext, *, days: int) -> RateSummary:
    """Rates by agency for the `days` Tehran days up to today (the demo stream's span)."""
    today = tehran_day(context.clock())
    start = today - timedelta(days=days - 1)
    window = Period(
        label=f"{start.isoformat()}..{today.isoformat()}",
        calendar="gregorian",
        start=start,
        end=today + timedelta(days=1),
    )
    with context.read_sessions() as session:
        table = response_rates(session, window, by="agency")
    return RateSummary(window=window, table=table, months=_months(start, today))


def _months(start: date, end: date) -> list[str]:
    months: list[str] = []
    day = start
    while day <= end:
        label = solar_month_of(day)
        if label not in months:
            months.append(label)
        day += timedelta(days=1)
    return months
