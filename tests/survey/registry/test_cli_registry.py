"""`survey agencies|services|users|audit` as an administrator runs them, on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from survey.config import Settings
from survey.context import AppContext
from survey.errors import NotAuthenticated
from survey.kernel.credentials import key_hash
from survey.models import Agency, ApiKey, AuditLog, Service
from tests.survey.admin_builders import run, use_test_database, write


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings) -> None:
    use_test_database(monkeypatch, migrated_settings)


def test_agencies_add_prints_the_key_once_alone_on_the_last_line(
    capsys: pytest.CaptureFixture[str], context: AppContext
) -> None:
    code, out, _ = run(
        capsys,
        "agencies", "add", "--code", "TAX",
        "--name-fa", "سازمان امور مالیاتی کشور",
        "--name-en", "Iranian National Tax Administration",
        "--province", "tehran",
    )  # fmt: skip
    assert code == 0
    lines = out.rstrip("\n").split("\n")
    key = lines[-1]
    assert key.startswith("agk_") and " " not in key and len(key) > 40
    assert key not in "\n".join(lines[:-1])
    with context.sessions() as session:
        stored = session.scalars(sa.select(ApiKey)).all()
        agency = session.scalar(sa.select(Agency).where(Agency.code == "TAX"))
    assert [k.key_hash for k in stored] == [key_hash(key)]
    assert all(key not in (k.prefix + k.label + k.key_hash) for k in stored)
    assert agency is not None and agency.province_code == "tehran"
    principal = context.keys.resolve(f"Bearer {key}")
    assert principal.kind == "agency" and principal.agency_code == "TAX"


def test_agencies_add_names_every_bad_field_and_refuses_a_duplicate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "agencies", "add", "--code", "tax!", "--name-fa", " ", "--name-en", "Tax",
        "--province", "atlantis", "--parent", "NOPE",
    )  # fmt: skip
    assert code == 2
    assert "code: must be upper-case Latin letters" in err and "'tax!'" in err
    assert "name_fa: the Persian name is required" in err
    assert "province: unknown province 'atlantis'" in err
    assert "parent: no agency with code 'NOPE'" in err
    assert "Traceback" not in err and out == ""
    assert (
        run(capsys, "agencies", "add", "--code", "TAX", "--name-fa", "م", "--name-en", "T")[0] == 0
    )
    code, _, err = run(
        capsys, "agencies", "add", "--code", "TAX", "--name-fa", "م", "--name-en", "T"
    )
    assert code == 2 and "an agency with code 'TAX' already exists" in err


def test_agencies_import_keeps_valid_rows_and_reports_each_bad_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, context: AppContext
) -> None:
    csv_file = write(
        tmp_path / "agencies.csv",
        "code,name_fa,name_en,parent,province\n"
        "NOCR,سازمان ثبت احوال کشور,National Organization for Civil Registration,,tehran\n"
        "nocr-x,نام,Name,,\n"
        "NOCR-TEH,اداره کل ثبت احوال استان تهران,Civil Registration Tehran,NOCR,tehran\n"
        "SSO,,Social Security Organization,,mars\n"
        "NOCR,سازمان ثبت احوال کشور,Duplicate in file,,tehran\n"
        "MUN-TEH,شهرداری تهران,Tehran Municipality,GHOST,tehran\n",
    )
    code, out, _ = run(capsys, "agencies", "import", str(csv_file))
    assert code == 1
    assert f"{csv_file}: row 3, code: must be upper-case" in out
    assert f"{csv_file}: row 5, name_fa: the Persian name is required" in out
    assert f"{csv_file}: row 5, province: unknown province 'mars'" in out
    assert f"{csv_file}: row 6, code: code 'NOCR' is repeated in this file" in out
    assert f"{csv_file}: row 7, parent: no agency with code 'GHOST'" in out
    assert out.rstrip().endswith("2 added, 0 unchanged, 4 failed (6 rows)")
    with context.sessions() as session:
        codes = set(session.scalars(sa.select(Agency.code)))
        child = session.scalar(sa.select(Agency).where(Agency.code == "NOCR-TEH"))
        parent = session.scalar(sa.select(Agency).where(Agency.code == "NOCR"))
        keys = session.scalar(sa.select(sa.func.count()).select_from(ApiKey))
    assert codes == {"NOCR", "NOCR-TEH"}
    assert child is not None and parent is not None and child.parent_id == parent.id
    assert keys == 0  # imports issue no keys: rotate-key gives one when the agency is ready

    good = write(
        tmp_path / "good.csv",
        "\n".join(out.splitlines()[0:0])
        + (
            "code,name_fa,name_en,parent,province\n"
            "NOCR,سازمان ثبت احوال کشور,National Organization for Civil Registration,,tehran\n"
        ),
    )
    code, out, _ = run(capsys, "agencies", "import", str(good))
    assert code == 0 and "0 added, 1 unchanged, 0 failed" in out


def test_a_bad_csv_header_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_file = write(tmp_path / "a.csv", "code,name,colour\nA,B,C\n")
    code, _, err = run(capsys, "agencies", "import", str(csv_file))
    assert code == 2
    assert "missing column 'name_fa'" in err and "unknown column 'colour'" in err
    code, _, err = run(capsys, "agencies", "import", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err


def test_services_add_list_and_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, context: AppContext
) -> None:
    run(capsys, "agencies", "add", "--code", "TAX", "--name-fa", "مالیات", "--name-en", "Tax")
    code, out, _ = run(
        capsys, "services", "add", "--agency", "TAX", "--code", "TAX-01",
        "--name-fa", "ثبت اظهارنامه", "--name-en", "Filing a tax return",
    )  # fmt: skip
    assert code == 0 and "service TAX-01 of agency TAX added" in out
    code, _, err = run(
        capsys, "services", "add", "--agency", "NOPE", "--code", "X-1", "--name-fa", "x",
        "--name-en", "x",
    )  # fmt: skip
    assert code == 2 and "agency: no agency with code 'NOPE'" in err
    csv_file = write(
        tmp_path / "services.csv",
        "agency,code,name_fa,name_en\n"
        "TAX,TAX-02,صدور گواهی,Tax clearance certificate\n"
        "GHOST,G-01,خدمت,Service\n"
        "TAX,TAX-01,ثبت اظهارنامه,Filing a tax return\n"
        "TAX,TAX-01,نام دیگر,Another name\n"
        "TAX,TAX-03,only three cells\n",
    )
    code, out, _ = run(capsys, "services", "import", str(csv_file))
    assert code == 1
    assert "row 3, agency: no agency with code 'GHOST'" in out
    assert "row 5, code: service 'TAX-01' already exists with different values" in out
    assert "row 6, name_en: the English name is required" in out
    assert "1 added, 1 unchanged, 3 failed (5 rows)" in out
    code, out, _ = run(capsys, "services", "list", "--agency", "TAX")
    assert code == 0 and "TAX-01" in out and "TAX-02" in out and "2 services" in out
    with context.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Service)) == 2


def test_rotate_and_revoke_keys(capsys: pytest.CaptureFixture[str], context: AppContext) -> None:
    _, out, _ = run(capsys, "agencies", "add", "--code", "TAX", "--name-fa", "م", "--name-en", "T")
    first = out.rstrip().split("\n")[-1]
    code, out, _ = run(capsys, "agencies", "rotate-key", "TAX")
    second = out.rstrip().split("\n")[-1]
    assert code == 0 and second.startswith("agk_") and second != first
    context.keys.forget()
    with pytest.raises(NotAuthenticated):
        context.keys.resolve(f"Bearer {first}")
    assert context.keys.resolve(f"Bearer {second}").agency_code == "TAX"
    code, out, _ = run(capsys, "agencies", "revoke-key", "TAX")
    assert code == 0 and "1 key(s) revoked" in out
    context.keys.forget()
    with pytest.raises(NotAuthenticated):
        context.keys.resolve(f"Bearer {second}")
    code, out, _ = run(capsys, "agencies", "list")
    assert "TAX" in out and "1 agencies" in out
    code, _, err = run(capsys, "agencies", "rotate-key", "NOPE")
    assert code == 2 and "no agency with code 'NOPE'" in err


def test_users_add_token_and_list(capsys: pytest.CaptureFixture[str], context: AppContext) -> None:
    code, out, _ = run(capsys, "users", "add", "--username", "sara", "--role", "statistician",
                       "--name", "Sara Ahmadi")  # fmt: skip
    token = out.rstrip().split("\n")[-1]
    assert code == 0 and token.startswith("stk_")
    principal = context.keys.resolve(f"Bearer {token}")
    assert (principal.kind, principal.role, principal.name) == ("staff", "statistician", "sara")
    code, out, _ = run(capsys, "users", "token", "sara")
    second = out.rstrip().split("\n")[-1]
    assert code == 0 and second.startswith("stk_") and second != token
    code, _, err = run(capsys, "users", "add", "--username", "op", "--role", "agency")
    assert code == 2 and "role 'agency' needs the agency it works for" in err
    code, _, err = run(capsys, "users", "add", "--username", "sara", "--role", "viewer")
    assert code == 2 and "a user named 'sara' already exists" in err
    code, out, _ = run(capsys, "users", "list")
    assert "sara" in out and "statistician" in out and "1 users" in out
    with context.sessions() as session:
        hashes = set(session.scalars(sa.select(ApiKey.key_hash)))
    assert hashes == {key_hash(token), key_hash(second)}


def test_every_change_is_in_the_audit_log(
    capsys: pytest.CaptureFixture[str], context: AppContext
) -> None:
    _, out, _ = run(capsys, "agencies", "add", "--code", "TAX", "--name-fa", "م", "--name-en", "T")
    key = out.rstrip().split("\n")[-1]
    run(capsys, "services", "add", "--agency", "TAX", "--code", "TAX-01", "--name-fa", "خ",
        "--name-en", "S")  # fmt: skip
    run(capsys, "agencies", "rotate-key", "TAX")
    run(capsys, "users", "add", "--username", "ali", "--role", "admin")
    with context.sessions() as session:
        rows = session.scalars(sa.select(AuditLog).order_by(AuditLog.id)).all()
    actions = [row.action for row in rows]
    assert actions == [
        "agency.add",
        "agency.key.issue",
        "service.add",
        "agency.key.issue",
        "agency.key.rotate",
        "user.add",
        "user.token.issue",
    ]
    assert rows[0].actor.startswith("cli:") and rows[0].after is not None
    assert rows[0].after["name_en"] == "T" and rows[0].entity_id == "TAX"
    assert all(key not in str(row.after) for row in rows)
    code, out, _ = run(capsys, "audit", "--limit", "3")
    assert code == 0 and "user.token.issue" in out and "agency.add" not in out
