"""The registry of agencies, their services, and agencies' ingestion keys.

Agencies report transactions with their own API key. A key is shown once, when it is issued;
only its SHA-256 is stored (see `survey.kernel.credentials`). Every change writes an audit row in
the
same transaction. Codes are the identifiers agencies and plans use: upper-case letters, digits,
'.', '-' and '_' (for example `TAX`, `TAX-01`), unique across the registry.

Each agency may have a short name per language for SMS (`sms_name_fa`, `sms_name_en`, at most
`survey.kernel.sms.SMS_NAME_MAX` characters): every invitation starts with it. Without one,
invitations use the full name, shortened to its first words where it does not fit.

CSV imports keep every valid row and report each bad row with its row number (the header is
row 1, as a spreadsheet shows it) and field; a row identical to what is stored is `unchanged`,
so importing the same file twice is harmless.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from survey.errors import Conflict, InvalidInput, NotFound, Problem
from survey.kernel import audit, credentials
from survey.kernel.credentials import ONCE, IssuedKey
from survey.kernel.db import transaction
from survey.kernel.principal import Principal
from survey.kernel.sms import sms_name_problem
from survey.models import Agency, ApiKey, Service, utcnow
from survey.registry import store

if TYPE_CHECKING:
    from survey.context import AppContext

__all__ = [
    "AGENCY_CSV_COLUMNS",
    "CODE_PATTERN",
    "SERVICE_CSV_COLUMNS",
    "AgencyAdded",
    "AgencyKey",
    "AgencyList",
    "AgencyView",
    "ImportReport",
    "ImportRowView",
    "ImportSummary",
    "IssuedKey",
    "KeysRevoked",
    "RowResult",
    "ServiceAdded",
    "ServiceList",
    "ServiceView",
    "add_agency",
    "add_service",
    "agencies_for",
    "decode_csv",
    "get_agency",
    "import_agencies",
    "import_agencies_csv",
    "import_agency_rows",
    "import_service_rows",
    "import_services",
    "import_services_csv",
    "issue_new_agency_key",
    "list_agencies",
    "list_services",
    "register_agency",
    "register_service",
    "revoke_agency_keys",
    "revoke_all_agency_keys",
    "rotate_agency_key",
    "services_for",
    "set_sms_names",
    "update_sms_names",
]

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]*$")
AGENCY_CODE_MAX = 40
SERVICE_CODE_MAX = 60
NAME_MAX = {"agency": 200, "service": 300}
AGENCY_CSV_COLUMNS = (
    "code", "name_fa", "name_en", "parent", "province", "sms_name_fa", "sms_name_en",
)  # fmt: skip
SMS_NAME_FIELDS = {"fa": "sms_name_fa", "en": "sms_name_en"}
SERVICE_CSV_COLUMNS = ("agency", "code", "name_fa", "name_en")
MAX_IMPORT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AgencyView:
    code: str
    name_fa: str
    name_en: str
    parent: str | None
    province: str | None
    services: int
    active_keys: int
    created_at: datetime
    sms_name_fa: str | None = None  # None: invitations use the full name (shortened to fit)
    sms_name_en: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceView:
    code: str
    agency: str
    name_fa: str
    name_en: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    code: str
    status: str  # added | unchanged | error
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("error")

    def summary(self) -> str:
        return (
            f"{self.count('added')} added, {self.count('unchanged')} unchanged, "
            f"{self.failed} failed ({len(self.rows)} rows)"
        )


@dataclass(frozen=True, slots=True)
class AgencyList:
    agencies: list[AgencyView]


@dataclass(frozen=True, slots=True)
class AgencyAdded:
    """A new agency and its first ingestion key (shown this once)."""

    agency: AgencyView
    api_key: str
    note: str = f"the key is {ONCE}"


@dataclass(frozen=True, slots=True)
class AgencyKey:
    """A new ingestion key of the agency with code `agency` (shown this once)."""

    agency: str
    api_key: str
    note: str = f"the key is {ONCE}"


@dataclass(frozen=True, slots=True)
class KeysRevoked:
    agency: str
    revoked: int


@dataclass(frozen=True, slots=True)
class ServiceList:
    services: list[ServiceView]


@dataclass(frozen=True, slots=True)
class ServiceAdded:
    service: ServiceView


@dataclass(frozen=True, slots=True)
class ImportRowView:
    row: int
    code: str
    status: str
    problems: list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """An import's outcome as the API answers it: the counts and every row's result."""

    summary: str
    added: int
    unchanged: int
    failed: int
    rows: list[ImportRowView]

    @classmethod
    def of(cls, report: ImportReport) -> ImportSummary:
        return cls(
            summary=report.summary(),
            added=report.count("added"),
            unchanged=report.count("unchanged"),
            failed=report.failed,
            rows=[
                ImportRowView(
                    row=row.row,
                    code=row.code,
                    status=row.status,
                    problems=[p.as_dict() for p in row.problems],
                )
                for row in report.rows
            ],
        )


# -- each in a transaction of its own (the API's way in) ------------------------------------


def agencies_for(context: AppContext, principal: Principal) -> AgencyList:
    with context.read_sessions() as session:
        return AgencyList(list_agencies(session, principal))


def register_agency(
    context: AppContext,
    principal: Principal,
    *,
    code: str,
    name_fa: str,
    name_en: str,
    parent: str | None = None,
    province: str | None = None,
    sms_name_fa: str | None = None,
    sms_name_en: str | None = None,
) -> AgencyAdded:
    """`add_agency` committed: the agency and its first key."""
    with transaction(context.sessions) as session:
        agency, issued = add_agency(
            session,
            principal,
            code=code,
            name_fa=name_fa,
            name_en=name_en,
            parent=parent,
            province=province,
            sms_name_fa=sms_name_fa,
            sms_name_en=sms_name_en,
        )
    return AgencyAdded(agency, issued.key)


def update_sms_names(
    context: AppContext, principal: Principal, code: str, names: Mapping[str, str | None]
) -> AgencyView:
    """`set_sms_names` committed."""
    with transaction(context.sessions) as session:
        return set_sms_names(session, principal, code, names)


def issue_new_agency_key(context: AppContext, principal: Principal, code: str) -> AgencyKey:
    """`rotate_agency_key` committed; the old keys stop working at once."""
    with transaction(context.sessions) as session:
        issued = rotate_agency_key(session, principal, code)
    context.keys.forget()
    return AgencyKey(code, issued.key)


def revoke_all_agency_keys(context: AppContext, principal: Principal, code: str) -> KeysRevoked:
    """`revoke_agency_keys` committed; the keys stop working at once."""
    with transaction(context.sessions) as session:
        revoked = revoke_agency_keys(session, principal, code)
    context.keys.forget()
    return KeysRevoked(code, revoked)


def services_for(
    context: AppContext, principal: Principal, *, agency: str | None = None
) -> ServiceList:
    with context.read_sessions() as session:
        return ServiceList(list_services(session, principal, agency=agency))


def register_service(
    context: AppContext,
    principal: Principal,
    *,
    agency: str,
    code: str,
    name_fa: str,
    name_en: str,
) -> ServiceAdded:
    """`add_service` committed."""
    with transaction(context.sessions) as session:
        service = add_service(
            session, principal, agency=agency, code=code, name_fa=name_fa, name_en=name_en
        )
    return ServiceAdded(service)


def decode_csv(body: bytes) -> str:
    """An uploaded CSV file as text (UTF-8, with or without a byte-order mark)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV body is not UTF-8 text (byte {exc.start})") from None


def import_agencies_csv(context: AppContext, principal: Principal, text: str) -> ImportSummary:
    """`import_agencies` committed."""
    with transaction(context.sessions) as session:
        return ImportSummary.of(import_agencies(session, principal, text))


def import_services_csv(context: AppContext, principal: Principal, text: str) -> ImportSummary:
    """`import_services` committed."""
    with transaction(context.sessions) as session:
        return ImportSummary.of(import_services(session, principal, text))


# -- reading -------------------------------------------------------------------------------


def list_agencies(session: Session, principal: Principal) -> list[AgencyView]:
    """All agencies, by code; an agency's own staff and systems see only their agency."""
    agencies = store.agencies(session, only=_own_agency(principal))
    codes = store.agency_codes(session)
    services = store.service_counts(session)
    keys = store.active_key_counts(session)
    return [
        AgencyView(
            code=a.code,
            name_fa=a.name_fa,
            name_en=a.name_en,
            parent=codes.get(a.parent_id) if a.parent_id else None,
            province=a.province_code,
            services=services.get(a.id, 0),
            active_keys=keys.get(a.id, 0),
            created_at=a.created_at,
            sms_name_fa=a.sms_name_fa,
            sms_name_en=a.sms_name_en,
        )
        for a in agencies
    ]


def get_agency(session: Session, principal: Principal, code: str) -> AgencyView:
    for view in list_agencies(session, principal):
        if view.code == code:
            return view
    raise NotFound(f"no agency with code {code!r}")


def list_services(
    session: Session, principal: Principal, *, agency: str | None = None
) -> list[ServiceView]:
    """Services by code, optionally of one agency; agency principals see only their own."""
    agency_id = _agency_by_code(session, agency, "agency").id if agency is not None else None
    rows = store.services_with_agency(session, agency_id=agency_id, only=_own_agency(principal))
    return [
        ServiceView(
            code=s.code,
            agency=agency_code,
            name_fa=s.name_fa,
            name_en=s.name_en,
            created_at=s.created_at,
        )
        for s, agency_code in rows
    ]


# -- agencies --------------------------------------------------------------------------------


def add_agency(
    session: Session,
    principal: Principal,
    *,
    code: str,
    name_fa: str,
    name_en: str,
    parent: str | None = None,
    province: str | None = None,
    sms_name_fa: str | None = None,
    sms_name_en: str | None = None,
) -> tuple[AgencyView, IssuedKey]:
    """Register an agency and issue its first ingestion key.

    Raises InvalidInput listing every bad field, or Conflict when the code exists.
    """
    values = {
        "code": code,
        "name_fa": name_fa,
        "name_en": name_en,
        "parent": parent,
        "province": province,
        "sms_name_fa": sms_name_fa,
        "sms_name_en": sms_name_en,
    }
    problems = _agency_problems(session, values, pending={})
    if problems:
        raise InvalidInput("the agency cannot be added", problems)
    if store.agency_by_code(session, code) is not None:
        raise Conflict(f"an agency with code {code!r} already exists")
    agency = _insert_agency(session, principal, values)
    issued = _issue_agency_key(session, principal, agency, label="first key")
    return get_agency(session, principal, agency.code), issued


def set_sms_names(
    session: Session, principal: Principal, code: str, names: Mapping[str, str | None]
) -> AgencyView:
    """Set the agency's SMS names for the languages in `names` (`fa`, `en`; None or blank:
    back to the full name); the others stay. InvalidInput names every bad one."""
    agency = _agency_by_code(session, code, "code")
    unknown = sorted(set(names) - set(SMS_NAME_FIELDS))
    problems = [
        Problem(f"unknown language {lang!r}; SMS names are {', '.join(SMS_NAME_FIELDS)}")
        for lang in unknown
    ]
    wanted = {
        SMS_NAME_FIELDS[lang]: _clean_sms_name(name)
        for lang, name in names.items()
        if lang in SMS_NAME_FIELDS
    }
    problems += _sms_name_problems(wanted, row=None)
    if problems:
        raise InvalidInput(f"the SMS names of agency {code!r} cannot be set", problems)
    before = {column: getattr(agency, column) for column in wanted}
    for column, name in wanted.items():
        setattr(agency, column, name)
    _flush_or_conflict(session)
    audit.record(
        session, principal, "agency.sms_name", "agency", agency.code, before=before, after=wanted
    )
    return get_agency(session, principal, agency.code)


def rotate_agency_key(session: Session, principal: Principal, code: str) -> IssuedKey:
    """Revoke the agency's active keys and issue a new one (also for agencies without a key)."""
    agency = _agency_by_code(session, code, "code")
    revoked = _revoke_keys(session, agency)
    issued = _issue_agency_key(session, principal, agency, label="rotated")
    audit.record(
        session,
        principal,
        "agency.key.rotate",
        "agency",
        agency.code,
        before={"active_keys": revoked},
        after={"prefix": issued.prefix},
    )
    return issued


def revoke_agency_keys(session: Session, principal: Principal, code: str) -> int:
    """Revoke every active key of the agency; returns how many were revoked."""
    agency = _agency_by_code(session, code, "code")
    revoked = _revoke_keys(session, agency)
    audit.record(
        session,
        principal,
        "agency.key.revoke",
        "agency",
        agency.code,
        before={"active_keys": revoked},
        after={"active_keys": 0},
    )
    return revoked


def import_agencies(session: Session, principal: Principal, text: str) -> ImportReport:
    """Add agencies from CSV text (columns: code,name_fa,name_en,parent,province, and optionally
    sms_name_fa,sms_name_en).

    A parent may be defined earlier in the same file. No keys are issued: give each agency
    its key with `rotate_agency_key` when it is ready to report.
    """
    rows = _read_csv(text, AGENCY_CSV_COLUMNS, required=("code", "name_fa", "name_en"))
    return _import_agencies(session, principal, rows)


def import_agency_rows(
    session: Session, principal: Principal, rows: Iterable[Mapping[str, str | None]]
) -> ImportReport:
    """`import_agencies` for rows already parsed (keys as the CSV columns; row numbers from 1)."""
    return _import_agencies(session, principal, _numbered(rows, AGENCY_CSV_COLUMNS))


def _import_agencies(
    session: Session,
    principal: Principal,
    rows: Iterable[tuple[int, dict[str, str | None], tuple[Problem, ...]]],
) -> ImportReport:
    report = ImportReport()
    pending: dict[str, Mapping[str, str | None]] = {}
    for number, values, shape in rows:
        code = values.get("code") or ""
        if shape:
            report.rows.append(RowResult(number, code, "error", shape))
            continue
        existing = store.agency_by_code(session, code) if code else None
        if existing is not None:
            report.rows.append(_existing_agency_row(session, number, existing, values))
            continue
        if code in pending:
            report.rows.append(
                RowResult(
                    number,
                    code,
                    "error",
                    (Problem(f"code {code!r} is repeated in this file", field="code", row=number),),
                )
            )
            continue
        problems = _agency_problems(session, values, pending=pending, row=number)
        if problems:
            report.rows.append(RowResult(number, code, "error", tuple(problems)))
            continue
        pending[code] = values
        report.rows.append(RowResult(number, code, "added"))
    for new in pending.values():
        _insert_agency(session, principal, new, action="agency.import")
    _flush_or_conflict(session)
    return report


# -- services --------------------------------------------------------------------------------


def add_service(
    session: Session,
    principal: Principal,
    *,
    agency: str,
    code: str,
    name_fa: str,
    name_en: str,
) -> ServiceView:
    """Register one service of an agency; InvalidInput for bad fields, Conflict if it exists."""
    values = {"agency": agency, "code": code, "name_fa": name_fa, "name_en": name_en}
    problems = _service_problems(session, values)
    if problems:
        raise InvalidInput("the service cannot be added", problems)
    if store.service_by_code(session, code) is not None:
        raise Conflict(f"a service with code {code!r} already exists")
    owner = _agency_by_code(session, agency, "agency")
    _insert_service(session, principal, owner, values)
    return next(s for s in list_services(session, principal, agency=agency) if s.code == code)


def import_services(session: Session, principal: Principal, text: str) -> ImportReport:
    """Add services from CSV text (columns: agency,code,name_fa,name_en)."""
    rows = _read_csv(text, SERVICE_CSV_COLUMNS, required=SERVICE_CSV_COLUMNS)
    return _import_services(session, principal, rows)


def import_service_rows(
    session: Session, principal: Principal, rows: Iterable[Mapping[str, str | None]]
) -> ImportReport:
    """`import_services` for rows already parsed (keys as the CSV columns; row numbers from 1)."""
    return _import_services(session, principal, _numbered(rows, SERVICE_CSV_COLUMNS))


def _import_services(
    session: Session,
    principal: Principal,
    rows: Iterable[tuple[int, dict[str, str | None], tuple[Problem, ...]]],
) -> ImportReport:
    report = ImportReport()
    seen: set[str] = set()
    for number, values, shape in rows:
        code = values.get("code") or ""
        if shape:
            report.rows.append(RowResult(number, code, "error", shape))
            continue
        existing = store.service_by_code(session, code) if code else None
        if existing is not None:
            owner = store.agency_by_id(session, existing.agency_id)
            same = (
                owner is not None
                and owner.code == values.get("agency")
                and existing.name_fa == values.get("name_fa")
                and existing.name_en == values.get("name_en")
            )
            report.rows.append(_same_or_conflict(number, code, same, "service"))
            continue
        if code in seen:
            report.rows.append(
                RowResult(
                    number,
                    code,
                    "error",
                    (Problem(f"code {code!r} is repeated in this file", field="code", row=number),),
                )
            )
            continue
        problems = _service_problems(session, values, row=number)
        if problems:
            report.rows.append(RowResult(number, code, "error", tuple(problems)))
            continue
        seen.add(code)
        owner = _agency_by_code(session, str(values["agency"]), "agency")
        _insert_service(session, principal, owner, values, action="service.import")
        report.rows.append(RowResult(number, code, "added"))
    _flush_or_conflict(session)
    return report


# -- internals -------------------------------------------------------------------------------


def _own_agency(principal: Principal) -> int | None:
    """The only agency this principal may see, or None for all."""
    if principal.kind == "agency" or (principal.kind == "staff" and principal.role == "agency"):
        return principal.agency_id if principal.agency_id is not None else -1
    return None


def _agency_by_code(session: Session, code: str, what: str) -> Agency:
    agency = store.agency_by_code(session, code)
    if agency is None:
        raise NotFound(f"{what}: no agency with code {code!r}")
    return agency


def _code_problem(code: object, max_length: int, row: int | None) -> Problem | None:
    if not isinstance(code, str) or not code:
        return Problem("is required", field="code", row=row)
    if len(code) > max_length:
        return Problem(
            f"must be at most {max_length} characters; got {len(code)}", field="code", row=row
        )
    if not CODE_PATTERN.match(code):
        return Problem(
            "must be upper-case Latin letters, digits, '.', '-' or '_', starting with a letter "
            f"or digit (for example TAX-01); got {code!r}",
            field="code",
            row=row,
        )
    return None


def _name_problems(values: Mapping[str, str | None], kind: str, row: int | None) -> list[Problem]:
    problems = []
    for name, language in (("name_fa", "Persian"), ("name_en", "English")):
        value = values.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"the {language} name is required", field=name, row=row))
        elif len(value) > NAME_MAX[kind]:
            problems.append(
                Problem(
                    f"must be at most {NAME_MAX[kind]} characters; got {len(value)}",
                    field=name,
                    row=row,
                )
            )
        elif any(ord(c) < 32 or c == "\x7f" for c in value):
            problems.append(
                Problem(
                    "contains a control character (such as NUL or a line break); remove it",
                    field=name,
                    row=row,
                )
            )
    return problems


def _clean_sms_name(name: str | None) -> str | None:
    """An SMS name as stored: spaces collapsed; None for none (the full name is used)."""
    if name is None or not name.strip():
        return None
    return re.sub(" {2,}", " ", name.strip())


def _sms_name_problems(names: Mapping[str, str | None], *, row: int | None) -> list[Problem]:
    """Problems of the SMS names given (`sms_name_fa`, `sms_name_en`; None: not given)."""
    problems = []
    for column, name in names.items():
        if name is None or not name.strip():
            continue
        problem = sms_name_problem(_clean_sms_name(name) or "", column.removeprefix("sms_name_"))
        if problem is not None:
            problems.append(Problem(problem, field=column, row=row))
    return problems


def _agency_problems(
    session: Session,
    values: Mapping[str, str | None],
    *,
    pending: Mapping[str, object],
    row: int | None = None,
) -> list[Problem]:
    problems = []
    code_problem = _code_problem(values.get("code"), AGENCY_CODE_MAX, row)
    if code_problem:
        problems.append(code_problem)
    problems += _name_problems(values, "agency", row)
    parent = values.get("parent") or None
    if parent is not None:
        if parent == values.get("code"):
            problems.append(Problem("an agency cannot be its own parent", field="parent", row=row))
        elif parent not in pending and store.agency_by_code(session, parent) is None:
            problems.append(
                Problem(
                    f"no agency with code {parent!r} (add the parent first)",
                    field="parent",
                    row=row,
                )
            )
    problems += _sms_name_problems(
        {field: values.get(field) for field in SMS_NAME_FIELDS.values()}, row=row
    )
    province = values.get("province") or None
    if province is not None and store.find_province(session, province) is None:
        problems.append(
            Problem(
                f"unknown province {province!r}; use one of the province codes "
                f"({', '.join(store.province_codes(session))})",
                field="province",
                row=row,
            )
        )
    return problems


def _service_problems(
    session: Session, values: Mapping[str, str | None], *, row: int | None = None
) -> list[Problem]:
    problems = []
    agency = values.get("agency")
    if not agency:
        problems.append(Problem("is required", field="agency", row=row))
    elif store.agency_by_code(session, agency) is None:
        problems.append(Problem(f"no agency with code {agency!r}", field="agency", row=row))
    code_problem = _code_problem(values.get("code"), SERVICE_CODE_MAX, row)
    if code_problem:
        problems.append(code_problem)
    problems += _name_problems(values, "service", row)
    return problems


def _agency_record(agency: Agency, parent: str | None) -> dict[str, object]:
    return {
        "code": agency.code,
        "name_fa": agency.name_fa,
        "name_en": agency.name_en,
        "parent": parent,
        "province": agency.province_code,
        "sms_name_fa": agency.sms_name_fa,
        "sms_name_en": agency.sms_name_en,
    }


def _insert_agency(
    session: Session,
    principal: Principal,
    values: Mapping[str, str | None],
    *,
    action: str = "agency.add",
) -> Agency:
    parent_code = values.get("parent") or None
    parent = store.agency_by_code(session, parent_code) if parent_code else None
    agency = Agency(
        code=str(values["code"]),
        name_fa=str(values["name_fa"]).strip(),
        name_en=str(values["name_en"]).strip(),
        parent_id=parent.id if parent else None,
        province_code=values.get("province") or None,
        sms_name_fa=_clean_sms_name(values.get("sms_name_fa")),
        sms_name_en=_clean_sms_name(values.get("sms_name_en")),
    )
    session.add(agency)
    _flush_or_conflict(session)
    audit.record(
        session, principal, action, "agency", agency.code, after=_agency_record(agency, parent_code)
    )
    return agency


def _insert_service(
    session: Session,
    principal: Principal,
    owner: Agency,
    values: Mapping[str, str | None],
    *,
    action: str = "service.add",
) -> Service:
    assert owner.id is not None
    service = Service(
        code=str(values["code"]),
        agency_id=owner.id,
        name_fa=str(values["name_fa"]).strip(),
        name_en=str(values["name_en"]).strip(),
    )
    session.add(service)
    _flush_or_conflict(session)
    audit.record(
        session,
        principal,
        action,
        "service",
        service.code,
        after={
            "code": service.code,
            "agency": owner.code,
            "name_fa": service.name_fa,
            "name_en": service.name_en,
        },
    )
    return service


def _flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "a code was registered by someone else at the same time; nothing was saved, try again"
        ) from None


def _issue_agency_key(
    session: Session, principal: Principal, agency: Agency, *, label: str
) -> IssuedKey:
    key = credentials.new_key("agency")
    prefix = credentials.display_prefix(key)
    session.add(
        ApiKey(key_hash=credentials.key_hash(key), prefix=prefix, agency_id=agency.id, label=label)
    )
    audit.record(
        session, principal, "agency.key.issue", "agency", agency.code, after={"prefix": prefix}
    )
    return IssuedKey(owner=agency.code, key=key, prefix=prefix)


def _revoke_keys(session: Session, agency: Agency) -> int:
    return store.revoke_agency_keys(session, agency.id, at=utcnow())


def _existing_agency_row(
    session: Session, number: int, existing: Agency, values: Mapping[str, str | None]
) -> RowResult:
    parent = store.agency_by_id(session, existing.parent_id) if existing.parent_id else None
    same = (
        existing.name_fa == (values.get("name_fa") or "").strip()
        and existing.name_en == (values.get("name_en") or "").strip()
        and (parent.code if parent else None) == (values.get("parent") or None)
        and existing.province_code == (values.get("province") or None)
        # an import without SMS names leaves those set since (`survey agencies sms-name`)
        and all(
            getattr(existing, field) == _clean_sms_name(values.get(field))
            for field in SMS_NAME_FIELDS.values()
            if values.get(field)
        )
    )
    return _same_or_conflict(number, existing.code, same, "agency")


def _same_or_conflict(number: int, code: str, same: bool, kind: str) -> RowResult:
    if same:
        return RowResult(number, code, "unchanged")
    return RowResult(
        number,
        code,
        "error",
        (
            Problem(
                f"{kind} {code!r} already exists with different values; imports never change "
                "existing entries",
                field="code",
                row=number,
            ),
        ),
    )


def _numbered(
    rows: Iterable[Mapping[str, str | None]], columns: tuple[str, ...]
) -> list[tuple[int, dict[str, str | None], tuple[Problem, ...]]]:
    out = []
    for number, row in enumerate(rows, start=1):
        values: dict[str, str | None] = {c: None for c in columns}
        for name in columns:
            value = row.get(name)
            values[name] = str(value).strip() or None if value is not None else None
        unknown = sorted(set(row) - set(columns))
        shape = tuple(
            Problem(f"unknown field {name!r}; the fields are {', '.join(columns)}", row=number)
            for name in unknown
        )
        out.append((number, values, shape))
    return out


def _read_csv(
    text: str, columns: Iterable[str], *, required: Iterable[str]
) -> list[tuple[int, dict[str, str | None], tuple[Problem, ...]]]:
    """Rows of a CSV text as (row number, values, shape problems); InvalidInput for a bad
    header."""
    columns = tuple(columns)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"the CSV file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InvalidInput("the CSV file is empty; its first row must name the columns")
    header = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in header]
    unknown = [h for h in header if h not in columns]
    problems = [Problem(f"missing column {c!r}", field=c, row=1) for c in missing]
    problems += [
        Problem(f"unknown column {h!r}; the columns are {', '.join(columns)}", field=h, row=1)
        for h in unknown
    ]
    if problems:
        raise InvalidInput("the CSV header is not usable", problems)
    rows = []
    try:
        numbered = list(enumerate(reader, start=2))
    except csv.Error as exc:  # a field past the csv module's limit, a NUL in a cell
        raise InvalidInput(
            f"the CSV file cannot be read at line {reader.line_num}: {str(exc)[:120]}",
            [Problem(str(exc)[:120], row=reader.line_num)],
        ) from None
    for index, cells in numbered:
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, str | None] = {c: None for c in columns}
        for name, cell in zip(header, cells, strict=False):
            values[name] = cell.strip() or None
        extra = tuple(
            Problem(
                f"has {len(cells)} cells but the header names {len(header)} columns "
                "(quote cells that contain commas)",
                row=index,
            )
            for _ in range(1)
            if len(cells) > len(header)
        )
        rows.append((index, values, extra))
    return rows
