"""Staff sign-in through the real app: cookies, CSRF, lockout, sessions, the users CLI."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from litestar import Litestar

from survey.access.sessions import LOCKOUT, MAX_FAILURES
from survey.config import Settings
from survey.context import AppContext
from survey.kernel.credentials import key_hash
from survey.models import ApiKey, AppUser, AuditLog
from tests.survey.access_builders import (
    PASSWORD,
    add_staff,
    form_field,
    https_client,
    sign_in,
)
from tests.survey.admin_builders import run, use_test_database


def test_sign_in_sets_a_secure_http_only_session_cookie_stored_hashed(
    app: Litestar, context: AppContext
) -> None:
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        response = sign_in(client, "sara", next_path="/api/v1/me")
        assert response.status_code == 303
        assert response.headers["location"] == "/api/v1/me"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("survey_session=ses_")
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", "Max-Age=28800"):
            assert flag in cookie
        token = client.cookies["survey_session"]
        me = client.get("/api/v1/me").json()
        assert (me["username"], me["role"], me["via"]) == ("sara", "admin", "session")
        assert len(me["csrf_token"]) == 64
    with context.sessions() as session:
        row = session.scalar(sa.select(ApiKey).where(ApiKey.label == "web session"))
        assert row is not None and row.key_hash == key_hash(token)
        actions = session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-1] == "user.login"


def test_a_session_cookie_is_not_a_bearer_token(app: Litestar, context: AppContext) -> None:
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        sign_in(client, "sara")
        token = client.cookies["survey_session"]
    with https_client(app) as fresh:
        response = fresh.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_changes_made_with_the_cookie_need_the_csrf_token(
    app: Litestar, context: AppContext
) -> None:
    add_staff(context, "sara", "admin")
    agency = {"code": "SSO", "name_fa": "تأمین اجتماعی", "name_en": "SSO"}
    with https_client(app) as client:
        sign_in(client, "sara")
        refused = client.post("/api/v1/agencies", json=agency)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["error"]
        wrong = client.post("/api/v1/agencies", json=agency, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        token = client.get("/api/v1/me").json()["csrf_token"]
        done = client.post("/api/v1/agencies", json=agency, headers={"X-CSRF-Token": token})
        assert done.status_code == 201
    with context.sessions() as session:
        actor = session.scalar(sa.select(AuditLog.actor).where(AuditLog.action == "agency.add"))
    assert actor == "staff:sara"


def test_the_login_form_needs_its_own_csrf_field(app: Litestar, context: AppContext) -> None:
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        client.get("/login")
        response = client.post(
            "/login",
            data={"username": "sara", "password": PASSWORD, "_csrf_token": "forged"},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "survey_session" not in client.cookies


def test_wrong_passwords_lock_the_account_and_it_unlocks_later(
    app: Litestar, context: AppContext, clock
) -> None:  # type: ignore[no-untyped-def]
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        for attempt in range(MAX_FAILURES):
            response = sign_in(client, "sara", password=f"wrong password {attempt}")
            assert response.status_code == 401
        with context.sessions() as session:
            user = session.scalar(sa.select(AppUser).where(AppUser.username == "sara"))
            assert user is not None and user.locked_until == clock.now + LOCKOUT
        locked = sign_in(client, "sara")  # the right password, but locked
        assert locked.status_code == 401
        assert "survey_session" not in client.cookies
        clock.now += LOCKOUT + timedelta(seconds=1)
        assert sign_in(client, "sara").status_code == 303
    with context.sessions() as session:
        actions = session.scalars(sa.select(AuditLog.action)).all()
        user = session.scalar(sa.select(AppUser).where(AppUser.username == "sara"))
    assert "user.lockout" in actions
    assert user is not None and (user.failed_logins, user.locked_until) == (0, None)


def _form_error(page: str) -> str:
    start = page.index('class="error"')
    return page[start : page.index("</", start)]


def test_refusals_never_tell_whether_a_username_exists(
    app: Litestar, context: AppContext, clock
) -> None:  # type: ignore[no-untyped-def]
    """A locked account, a wrong password and an unknown username read the same."""
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        for _ in range(MAX_FAILURES):
            sign_in(client, "sara", password="not the password")
        locked = sign_in(client, "sara")  # the right password, but locked
        wrong = sign_in(client, "sara", password="still wrong")
        unknown = sign_in(client, "nobody", password="whatever it is")
    assert locked.status_code == wrong.status_code == unknown.status_code == 401
    assert _form_error(locked.text) == _form_error(wrong.text) == _form_error(unknown.text)
    assert f"{clock.now + LOCKOUT:%H:%M}" not in locked.text
    assert "۱۵ دقیقه" in _form_error(locked.text)


def test_sessions_expire_and_sign_out_ends_them(app: Litestar, context: AppContext, clock) -> None:  # type: ignore[no-untyped-def]
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        sign_in(client, "sara")
        assert client.get("/api/v1/users").status_code == 200
        clock.now += timedelta(hours=8)
        context.keys.forget()
        expired = client.get("/api/v1/users")
        assert expired.status_code == 401
        assert "sign in again" in expired.json()["error"]
    clock.now += timedelta(minutes=1)
    with https_client(app) as client:
        sign_in(client, "sara")
        token = client.cookies["survey_session"]
        without = client.post("/logout", data={}, follow_redirects=False)
        assert without.status_code == 403
        page = client.get("/logout")
        assert "sara" in page.text
        out = client.post(
            "/logout", data={"_csrf_token": form_field(page.text)}, follow_redirects=False
        )
        assert out.status_code == 303 and out.headers["location"] == "/login"
        client.cookies.set("survey_session", token, domain="testserver.local")
        assert client.get("/api/v1/users").status_code == 401


def test_an_open_redirect_is_refused(app: Litestar, context: AppContext) -> None:
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
            response = sign_in(client, "sara", next_path=evil)
            assert response.headers["location"] == "/ingestion", evil


def test_deactivating_or_a_new_password_ends_sessions(app: Litestar, context: AppContext) -> None:
    admin = add_staff(context, "root", "admin")
    add_staff(context, "mina", "viewer")
    with https_client(app) as browser, https_client(app) as api:
        sign_in(browser, "mina")
        assert browser.get("/api/v1/me").status_code == 200
        weak = api.post("/api/v1/users/mina/password", json={"password": "short"}, headers=admin)
        assert weak.status_code == 422
        assert weak.json()["problems"][0]["field"] == "password"
        changed = api.post(
            "/api/v1/users/mina/password", json={"password": "a new long password"}, headers=admin
        )
        assert changed.status_code == 200 and changed.json()["user"]["has_password"]
        assert browser.get("/api/v1/me").status_code == 401
        assert sign_in(browser, "mina", password="a new long password").status_code == 303
        off = api.post("/api/v1/users/mina/deactivate", headers=admin)
        assert off.status_code == 200 and off.json()["user"]["active"] is False
        assert browser.get("/api/v1/me").status_code == 401
        assert sign_in(browser, "mina", password="a new long password").status_code == 401
        assert api.post("/api/v1/users/mina/activate", headers=admin).status_code == 200
        assert api.post("/api/v1/users/ghost/unlock", headers=admin).status_code == 404
    with context.sessions() as session:
        actions = set(session.scalars(sa.select(AuditLog.action)))
    assert {"user.password.set", "user.deactivate", "user.activate"} <= actions


def test_the_first_admin_is_created_from_the_console(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    app: Litestar,
    context: AppContext,
) -> None:
    use_test_database(monkeypatch, settings)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, _ = run(
        capsys, "users", "add", "--username", "boss", "--role", "admin", "--password-stdin"
    )
    assert code == 0
    assert "can sign in at /login" in out
    assert PASSWORD not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    code, _, err = run(capsys, "users", "set-password", "boss", "--password-stdin")
    assert code == 2 and "no password" in err
    with pytest.raises(SystemExit):  # a password source is required: argparse refuses
        run(capsys, "users", "set-password", "boss")
    code, out, _ = run(capsys, "users", "list")
    assert "boss" in out and "yes" in out
    with https_client(app) as client:
        assert sign_in(client, "boss").status_code == 303
        assert client.get("/api/v1/users").status_code == 200
    with context.sessions() as session:
        stored = session.scalar(sa.select(AppUser.password_hash).where(AppUser.username == "boss"))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_browser_is_sent_to_the_form_and_back(app: Litestar, context: AppContext) -> None:
    add_staff(context, "sara", "admin")
    html = {"Accept": "text/html,application/xhtml+xml"}
    with https_client(app) as client:
        response = client.get("/audit?action=user.", headers=html, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Faudit%3Faction%3Duser."
        assert response.headers["referrer-policy"] == "no-referrer"
        form = client.get(response.headers["location"])
        assert 'name="next" value="/audit?action=user."' in form.text
        signed = sign_in(client, "sara", next_path="/audit?action=user.")
        assert signed.headers["location"] == "/audit?action=user."
        assert client.get("/audit?action=user.", headers=html).status_code == 200
    with https_client(app) as client:
        api = client.get("/api/v1/audit", headers=html, follow_redirects=False)
        assert api.status_code == 401  # scripts get the JSON answer
        assert client.get("/audit", follow_redirects=False).status_code == 401


def test_an_admin_creates_a_user_who_can_sign_in(app: Litestar, context: AppContext) -> None:
    admin = add_staff(context, "root", "admin")
    with https_client(app) as client:
        weak = client.post(
            "/api/v1/users",
            json={"username": "vida", "role": "viewer", "password": "short"},
            headers=admin,
        )
        assert weak.status_code == 422 and weak.json()["problems"][0]["field"] == "password"
        made = client.post(
            "/api/v1/users",
            json={"username": "vida", "role": "viewer", "password": "vida's long passphrase"},
            headers=admin,
        )
        assert made.status_code == 201 and made.json()["user"]["has_password"] is True
        assert "passphrase" not in made.text
        assert sign_in(client, "vida", password="vida's long passphrase").status_code == 303
