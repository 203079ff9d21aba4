"""The demo: a realistic registry, the bundled questionnaires, a plan, staff, and a stream of
synthetic transactions ingested through the real ingestion service.

Everything the demo seeds comes from data files in `survey/demo/data/` (`demo-registry.yaml`,
`demo-plan.yaml`). Seeding is idempotent: existing agencies, services, questionnaires and an
unchanged plan are kept, so running the demo again only appends a new stream of transactions
(with new external ids) and issues fresh credentials to print.

The stream is drawn with numpy from a seeded generator (the seed and the run number), so a
fresh database gets the same stream every time: volumes by agency weight and service share,
channels by each service's mix, fewer transactions on Thursdays and Fridays (the Iranian
weekend), desk hours for in-person services, Iranian mobile numbers written in the usual
forms (some in Persian digits), and a small share of resends (duplicates) and invalid records.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from survey.access import users
from survey.context import AppContext
from survey.demo import store
from survey.demo.releases import DemoReleases, publish_demo_releases
from survey.demo.survey_round import (
    CitizenReport,
    InvitationRound,
    RateSummary,
    demo_sms_file,
    rate_summary,
    send_invitations,
    simulate_citizens,
)
from survey.ingestion.ingest import ingest_transactions
from survey.kernel import audit
from survey.kernel.db import transaction
from survey.kernel.locale import persian_digits
from survey.kernel.principal import Principal
from survey.models import CHANNELS
from survey.registry import agencies as registry
from survey.registry import questionnaires as questionnaire_registry
from survey.sampling import plans

__all__ = [
    "DemoData",
    "DemoReport",
    "SeedReport",
    "StreamReport",
    "demo_plan_text",
    "describe",
    "ingest_stream",
    "load_demo_data",
    "run_demo",
    "seed",
    "synthetic_stream",
]

DEFAULT_TRANSACTIONS = 120_000
DEFAULT_DAYS = 62
DEFAULT_SEED = 1405
BATCH_SIZE = 2_000
DUPLICATE_SHARE = 0.02
INVALID_SHARE = 0.01
ENGLISH_SHARE = 0.04
ADMIN_USER = "demo-admin"
DEMO_USERS = (
    ("demo-admin", "admin", None, "Demo administrator"),
    ("demo-statistician", "statistician", None, "Demo statistician"),
    ("demo-viewer", "viewer", None, "Demo viewer"),
    ("tax-operator", "agency", "TAX", "Tax administration operator"),
)
KEY_AGENCY = "TAX"
# Day-of-week volume (Monday=0 .. Sunday=6): Thursday is half a working day, Friday the weekend.
WEEKDAY_VOLUME = (1.0, 1.0, 1.0, 0.55, 0.15, 1.0, 1.0)
DESK_CHANNELS = frozenset({"in_person", "kiosk"})


@dataclass(frozen=True)
class DemoData:
    """The demo registry file, parsed."""

    agencies: list[dict[str, Any]]
    national_provinces: dict[str, float]
    mobile_prefixes: list[str]


@dataclass(frozen=True)
class SeedReport:
    agencies_added: int
    services_added: int
    questionnaires: list[str]
    plan_version: int
    plan_applied: bool
    admin_token: str
    agency_code: str
    agency_key: str
    admin_password: str = ""


@dataclass(frozen=True)
class StreamReport:
    received: int
    accepted: int
    duplicates: int
    rejected: int
    no_plan: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class DemoReport:
    seed: SeedReport
    stream: StreamReport
    run: int
    invitations: InvitationRound
    citizens: CitizenReport
    rates: RateSummary
    releases: DemoReleases | None = None


@dataclass
class _Stream:
    """Records to post, grouped by the agency that reports them, in time order."""

    by_agency: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.by_agency.values())


def load_demo_data() -> DemoData:
    raw = yaml.safe_load(_data_text("demo-registry.yaml"))
    return DemoData(
        agencies=list(raw["agencies"]),
        national_provinces=dict(raw["national_provinces"]),
        mobile_prefixes=[str(p) for p in raw["mobile_prefixes"]],
    )


def demo_plan_text() -> str:
    return _data_text("demo-plan.yaml")


def _data_text(name: str) -> str:
    return (resources.files("survey.demo") / "data" / name).read_text(encoding="utf-8")


# -- seeding ---------------------------------------------------------------------------------


def seed(context: AppContext, principal: Principal, data: DemoData) -> SeedReport:
    """Registry, questionnaires, plan and users; what exists already is kept as it is."""
    with transaction(context.sessions) as session:
        # Entries that exist are kept as they are, even if someone has edited them since.
        known_agencies = store.agency_codes(session)
        known_services = store.service_codes(session)
        agency_rows = [
            {
                "code": a["code"],
                "name_fa": a["name_fa"],
                "name_en": a["name_en"],
                "parent": a.get("parent"),
                "province": a.get("province"),
                "sms_name_fa": a.get("sms_name_fa"),
                "sms_name_en": a.get("sms_name_en"),
            }
            for a in data.agencies
            if a["code"] not in known_agencies
        ]
        service_rows = [
            {"agency": a["code"], **{k: s[k] for k in ("code", "name_fa", "name_en")}}
            for a in data.agencies
            for s in a["services"]
            if s["code"] not in known_services
        ]
        agencies = registry.import_agency_rows(session, principal, agency_rows)
        services = registry.import_service_rows(session, principal, service_rows)
        for report, what in ((agencies, "agency"), (services, "service")):
            if report.failed:
                problems = "; ".join(str(p) for r in report.rows for p in r.problems)
                raise RuntimeError(f"the demo {what} data does not fit the registry: {problems}")
        loaded = questionnaire_registry.register_library(session, principal)
    text = demo_plan_text()
    with transaction(context.sessions) as session:
        # The demo plan is applied once; a plan applied since then by hand stays as it is.
        existing_version = store.plan_version_with_source(session, text)
        applied = existing_version is None
        if existing_version is None:
            detail = plans.apply_plan(
                session,
                principal,
                text,
                file="survey/demo/data/demo-plan.yaml",
                now=context.clock(),
                public_base_url=context.settings.public_base_url,
            )
            version = detail.version
        else:
            version = int(existing_version)
    with transaction(context.sessions) as session:
        existing = store.usernames(session)
        admin_token = ""
        for username, role, agency, name in DEMO_USERS:
            if username in existing:
                continue
            _, issued = users.add_user(
                session, principal, username=username, role=role, agency=agency, display_name=name
            )
            if username == ADMIN_USER:
                admin_token = issued.key
        if not admin_token:
            admin_token = users.issue_token(session, principal, ADMIN_USER).key
        # A fresh password each run, printed once, so a newcomer can sign in to the staff pages.
        admin_password = secrets.token_urlsafe(12)
        users.set_password(session, principal, ADMIN_USER, admin_password, now=context.clock())
        agency_key = registry.rotate_agency_key(session, principal, KEY_AGENCY).key
    context.keys.forget()
    return SeedReport(
        agencies_added=agencies.count("added"),
        services_added=services.count("added"),
        questionnaires=[f"{r.qid}@{r.version}" for r in loaded],
        plan_version=version,
        plan_applied=applied,
        admin_token=admin_token,
        admin_password=admin_password,
        agency_code=KEY_AGENCY,
        agency_key=agency_key,
    )


# -- the synthetic stream ----------------------------------------------------------------------


def synthetic_stream(
    data: DemoData,
    *,
    transactions: int,
    days: int,
    now: datetime,
    seed: int,
    run: int,
    timezone: str = "Asia/Tehran",
) -> _Stream:
    """`transactions` records over the `days` days up to `now`, plus resends; all vectorised
    except building the final JSON-like dicts."""
    if transactions < 1 or days < 1:
        raise ValueError("transactions and days must be positive")
    rng = np.random.default_rng([seed, run])
    zone = ZoneInfo(timezone)
    n = transactions

    # Services: probability = agency weight x service share.
    services = [(a, s) for a in data.agencies for s in a["services"]]
    weights = np.array([float(a["weight"]) * float(s["share"]) for a, s in services])
    chosen = rng.choice(len(services), size=n, p=weights / weights.sum())
    channel_share = np.array(
        [[float(s["channels"].get(c, 0.0)) for c in CHANNELS] for _, s in services]
    )
    cumulative = np.cumsum(channel_share / channel_share.sum(axis=1, keepdims=True), axis=1)
    channel = np.minimum(
        (rng.random(n)[:, None] >= cumulative[chosen]).sum(axis=1), len(CHANNELS) - 1
    )

    # Days (Tehran calendar), weighted by weekday; times of day by channel.
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=offset) for offset in range(days)]
    day_weight = np.array([WEEKDAY_VOLUME[d.weekday()] for d in day_list])
    day_index = rng.choice(days, size=n, p=day_weight / day_weight.sum())
    desk = np.isin(channel, [CHANNELS.index(c) for c in DESK_CHANNELS])
    phone_channel = channel == CHANNELS.index("phone")
    hours = np.where(
        desk,
        rng.uniform(7.5, 14.5, n),
        np.where(phone_channel, rng.uniform(8.0, 20.0, n), rng.uniform(6.0, 24.0, n)),
    )
    midnight_utc = np.array(
        [datetime(d.year, d.month, d.day, tzinfo=zone).timestamp() for d in day_list]
    )
    stamp = midnight_utc[day_index] + hours * 3600.0
    latest = now.timestamp() - 60.0
    stamp = np.where(stamp > latest, stamp - 86_400.0, stamp)
    order = np.argsort(stamp, kind="stable")

    # Phones: a pool smaller than the stream, so some citizens come back.
    pool_size = max(50, int(n * 0.85))
    prefixes = np.array(data.mobile_prefixes)
    pool = np.char.add(
        prefixes[rng.integers(len(prefixes), size=pool_size)],
        np.char.zfill(rng.integers(0, 10_000_000, size=pool_size).astype(str), 7),
    )
    phones = pool[rng.integers(pool_size, size=n)]
    form = rng.choice(5, size=n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    english = rng.random(n) < ENGLISH_SHARE
    office = rng.integers(1, 40, size=n)

    # Provinces: local agencies' own; national agencies' spread by population.
    province_codes = list(data.national_provinces)
    province_weight = np.array([data.national_provinces[p] for p in province_codes])
    national_province = rng.choice(
        len(province_codes), size=n, p=province_weight / province_weight.sum()
    )

    invalid = np.zeros(n, dtype=np.int8)
    bad = rng.choice(n, size=int(n * INVALID_SHARE), replace=False)
    invalid[bad] = 1 + (np.arange(bad.size) % 4)
    resent = rng.choice(n, size=int(n * DUPLICATE_SHARE), replace=False)

    stream = _Stream()
    tag = f"demo{run}"
    records: list[dict[str, str]] = [{} for _ in range(n)]
    for position in order.tolist():
        agency, service = services[chosen[position]]
        channel_code = CHANNELS[channel[position]]
        local = datetime.fromtimestamp(float(stamp[position]), zone)
        record = {
            "external_id": f"{tag}-{position:07d}",
            "service": service["code"],
            "channel": channel_code,
            "completed_at": local.isoformat(timespec="seconds"),
            "phone": _written(str(phones[position]), int(form[position])),
            "language": "en" if english[position] else "fa",
            "province": (
                agency["province"]
                if agency.get("local")
                else province_codes[national_province[position]]
            ),
        }
        if channel_code in DESK_CHANNELS:
            record["office"] = f"{agency['code']}-{office[position]:02d}"
        _spoil(record, int(invalid[position]))
        records[position] = record
        stream.by_agency.setdefault(agency["code"], []).append(record)
    for position in resent.tolist():
        agency, _ = services[chosen[position]]
        stream.by_agency[agency["code"]].append(dict(records[position]))
    return stream


def _written(national: str, form: int) -> str:
    """A national-format mobile (`09121234567`) as people write it."""
    if form == 1:
        return "+98" + national[1:]
    if form == 2:
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    if form == 3:
        return persian_digits(national)
    if form == 4:
        return "98" + national[1:]
    return national


def _spoil(record: dict[str, str], kind: int) -> None:
    """Make a record invalid the way real feeds do (kind 0 leaves it alone)."""
    if kind == 1:
        record["phone"] = record["phone"][:6]
    elif kind == 2:
        record["channel"] = "fax"
    elif kind == 3:
        record["service"] = "UNKNOWN-01"
    elif kind == 4:
        record["completed_at"] = record["completed_at"][:19]  # no UTC offset


def ingest_stream(
    context: AppContext, stream: _Stream, *, batch_size: int = BATCH_SIZE
) -> StreamReport:
    """Post the stream through the ingestion service, agency by agency, in batches."""
    totals = dict.fromkeys(("received", "accepted", "duplicates", "rejected", "no_plan"), 0)
    started = time.perf_counter()
    for agency, records in stream.by_agency.items():
        for start in range(0, len(records), batch_size):
            result = ingest_transactions(context, agency, records[start : start + batch_size])
            for name in totals:
                totals[name] += getattr(result, name)
    return StreamReport(**totals, seconds=time.perf_counter() - started)


# -- the whole demo ----------------------------------------------------------------------------


def run_demo(
    context: AppContext,
    principal: Principal,
    *,
    transactions: int = DEFAULT_TRANSACTIONS,
    days: int = DEFAULT_DAYS,
    seed_value: int = DEFAULT_SEED,
) -> DemoReport:
    """Seed what is missing, ingest a new stream, invite its sampled citizens by SMS (file
    gateway), let simulated citizens answer, and measure the response rates (the database must
    be migrated)."""
    data = load_demo_data()
    seeded = seed(context, principal, data)
    run = _run_number(context)
    stream = ingest_stream(
        context,
        synthetic_stream(
            data,
            transactions=transactions,
            days=days,
            now=context.clock(),
            seed=seed_value,
            run=run,
            timezone=context.settings.timezone,
        ),
    )
    _record_stream(context, principal, run, seed_value, stream)
    invitations = send_invitations(context, demo_sms_file(context.settings))
    citizens = simulate_citizens(invitations, seed=seed_value, run=run)
    rates = rate_summary(context, days=days)
    releases = publish_demo_releases(context, principal, run=run)  # docs/publication.md
    return DemoReport(
        seed=seeded,
        stream=stream,
        run=run,
        invitations=invitations,
        citizens=citizens,
        rates=rates,
        releases=releases,
    )


def _run_number(context: AppContext) -> int:
    """How many streams earlier demo runs ingested (each run's stream has its own ids)."""
    with context.read_sessions() as session:
        return store.audit_action_count(session, "demo.stream")


def _record_stream(
    context: AppContext, principal: Principal, run: int, seed_value: int, report: StreamReport
) -> None:
    with transaction(context.sessions) as session:
        audit.record(
            session,
            principal,
            "demo.stream",
            "demo",
            run,
            after={
                "seed": seed_value,
                "received": report.received,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
            },
        )


def describe(report: DemoReport, *, today: date) -> list[str]:
    """Lines for the console (the admin token last)."""
    s, t = report.seed, report.stream
    plan = f"plan version {s.plan_version} " + ("applied" if s.plan_applied else "kept (unchanged)")
    return [
        f"registry: {s.agencies_added} agencies and {s.services_added} services added "
        "(existing ones kept)",
        f"questionnaires: {', '.join(s.questionnaires)}; {plan}",
        f"stream {report.run}: {t.received:,} records posted in {t.seconds:.1f} s "
        f"({t.per_second:,.0f}/s): {t.accepted:,} accepted, {t.duplicates:,} duplicates, "
        f"{t.rejected:,} rejected" + (f", {t.no_plan:,} before the plan" if t.no_plan else ""),
        *describe_invitations(report.invitations),
        *describe_citizens(report.citizens),
        *(report.releases.lines() if report.releases else []),
        f"agency {s.agency_code} ingestion key (new each run): {s.agency_key}",
        "published satisfaction indices: / (Persian; ?lang=en for English); methodology, "
        "open data (/api/v1/releases) and printable reports are linked from there",
        f"staff pages (/ingestion, /staff/plans, /audit, release previews): sign in at /login "
        f"as {ADMIN_USER} with password {s.admin_password} (new each run); as of {today}",
        "admin API token (new each run; send as 'Authorization: Bearer <token>'):",
        s.admin_token,
    ]


def describe_invitations(round_: InvitationRound) -> list[str]:
    moment = round_.moment.astimezone(ZoneInfo("Asia/Tehran")).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"SMS: {round_.invited:,} invitations, {round_.sent:,} messages sent through the file "
        f"gateway to {round_.sms_file}"
        + (
            f" ({round_.opted_out_before:,} numbers had opted out)"
            if round_.opted_out_before
            else ""
        )
    ]
    if round_.delayed_by_quiet_hours:
        lines.append(
            f"  (now is inside the plan's quiet hours: the round is simulated at {moment} Tehran, "
            "when the first invitations may leave)"
        )
    return lines


def describe_citizens(citizens: CitizenReport) -> list[str]:
    a = citizens.count
    outcomes = citizens.outcomes
    web = (
        f"web: {a('sms_link:complete'):,} completed (some after saving and coming back), "
        f"{a('sms_link:partial'):,} saved part, {a('sms_link:open_only'):,} only opened, "
        f"{a('sms_link:opt_out'):,} opted out on the page"
    )
    sms = (
        f"SMS dialogue: {outcomes['completed']:,} completed, "
        f"{a('sms_dialog:partial'):,} stopped midway, {outcomes['opted_out']:,} opted out by "
        f"reply ({citizens.sms_replies:,} replies to the webhook, "
        f"{outcomes['reprompted']:,} re-prompted)"
    )
    silent = a("sms_link:silent") + a("sms_dialog:silent")
    undelivered = a("sms_link:undelivered") + a("sms_dialog:undelivered")
    return [
        f"citizens: {web}; {sms}; {undelivered:,} undelivered; {silent:,} did not react "
        f"({citizens.web_requests:,} page requests, {citizens.delivery_reports:,} delivery "
        "reports)"
    ]
