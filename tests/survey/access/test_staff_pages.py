"""The staff pages share one frame: the language switch to the same page, the navigation the
signed-in role may use (the current page marked), who is signed in and a sign-out form that
works; and they speak the reader's language: Persian pages in Persian (names, not codes;
Persian digits and punctuation), English pages in English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.context import AppContext
from survey.http.guards import SESSION_COOKIE
from tests.survey.access_builders import add_staff, https_client, sign_in
from tests.survey.results.test_plan_proposals import _history as history

PAGES = {"ingestion": "/ingestion", "plans": "/staff/plans", "audit": "/audit"}
ALLOWED = {
    "admin": {"ingestion", "plans", "audit"},
    "statistician": {"ingestion", "plans"},
    "viewer": {"ingestion"},
}


def _nav(html: str) -> dict[str, str]:
    """The staff navigation: address -> text (the current page's address gets a `*`)."""
    nav = html.split("<nav ", 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', nav)
    return {href + ("*" if current else ""): text for href, current, text in links}


class _Visible(HTMLParser):
    """Visible Persian text: leaves out what is marked left-to-right or English (codes, the
    language switch), form controls, code and preformatted text."""

    SKIP = ("style", "script", "title", "textarea", "pre", "code", "option", "select")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "input", "meta", "link", "img"):
            return
        values = dict(attrs)
        foreign = values.get("dir") == "ltr" or values.get("lang") not in (None, "fa")
        if self._stack or tag in self.SKIP or foreign:
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._stack:
            self.parts.append(data)


def _persian_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html.split("<body>", 1)[1])
    return " ".join(" ".join(parser.parts).split())


class Browsers:
    """One test client signed in as each role in turn (its session cookie swapped in)."""

    def __init__(self, client: TestClient, sessions: dict[str, str]) -> None:
        self._client = client
        self._sessions = sessions

    def __getitem__(self, role: str) -> TestClient:
        self._client.cookies.clear()
        self._client.cookies.set(SESSION_COOKIE, self._sessions[role])
        return self._client


@pytest.fixture
def signed_in(app: Litestar, context: AppContext) -> Iterator[Browsers]:
    """Each role signed in through /login (a session cookie, as people use the pages)."""
    history(context)
    sessions = {}
    with https_client(app) as client:
        for role in ALLOWED:
            add_staff(context, f"{role}-1", role)
            client.cookies.clear()
            assert sign_in(client, f"{role}-1").status_code == 303
            sessions[role] = str(client.cookies.get(SESSION_COOKIE))
        yield Browsers(client, sessions)


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_every_staff_page_has_the_frame_for_its_role(signed_in: Browsers, lang: str) -> None:
    query = "?lang=en" if lang == "en" else ""
    for role, allowed in ALLOWED.items():
        client = signed_in[role]
        for page in allowed:
            answer = client.get(PAGES[page] + query)
            assert answer.status_code == 200, (role, page, answer.text[:300])
            html = answer.text
            direction = "rtl" if lang == "fa" else "ltr"
            assert f'<html lang="{lang}" dir="{direction}">' in html
            assert '<link rel="stylesheet" href="/static/staff.css">' in html
            nav = _nav(html)
            shown = {key for key, path in PAGES.items() for href in nav if href.startswith(path)}
            assert shown == allowed, (role, page, nav)  # only the pages the role may open
            current = [href for href in nav if href.endswith("*")]
            assert current == [PAGES[page] + query + "*"]
            assert any(href.split("?")[0] == "/" for href in nav)  # the public site
            other = "fa" if lang == "en" else "en"
            assert f'href="{PAGES[page]}?lang={other}"' in html  # the switch, same page
            assert f'<bdi dir="ltr">{role}-1</bdi>' in html  # who is signed in
            form = re.search(r'<form method="post" action="/logout".*?</form>', html, re.S)
            assert form is not None, (role, page)
            token = client.get("/api/v1/me").json()["csrf_token"]
            assert f'value="{token}"' in form[0]  # the session's CSRF token


def test_the_sign_out_form_ends_the_session(signed_in: Browsers) -> None:
    client = signed_in["viewer"]
    html = client.get("/ingestion?lang=en").text
    token = re.search(r'action="/logout".*?name="_csrf_token" value="([^"]+)"', html, re.S)
    assert token is not None
    out = client.post("/logout", data={"_csrf_token": token[1]}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    again = client.get("/ingestion", headers={"Accept": "text/html"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_a_caller_with_a_key_has_no_session_to_end(client: TestClient, context: AppContext) -> None:
    headers = add_staff(context, "keyed", "admin")
    html = client.get("/audit?lang=en", headers=headers).text
    assert 'action="/logout"' not in html
    assert "with an access key (no sign-in session)" in html
    assert set(_nav(html)) >= {"/ingestion?lang=en", "/staff/plans?lang=en", "/audit?lang=en*"}


def test_the_switch_keeps_the_audit_filters(signed_in: Browsers) -> None:
    html = signed_in["admin"].get("/audit?action=user.&limit=5").text
    assert 'href="/audit?action=user.&amp;limit=5&amp;lang=en"' in html


def test_the_persian_plan_page_names_things_and_writes_persian(signed_in: Browsers) -> None:
    client = signed_in["statistician"]
    page = client.get("/staff/plans").text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert token is not None
    form = {"_csrf_token": token[1], "period": "1405-Q1", "target_moe": "5", "by": "agency"}
    html = client.post("/staff/plans/propose", data=form).text
    text = _persian_text(html)
    assert "بهار ۱۴۰۵" in text  # the quarter by name
    # agencies, services and channels by their registered names (the builder's names hold
    # the codes: «دستگاه TAX», «خدمت TAX-01»), never as codes or stratum keys
    assert "دستگاه TAX" in text and "خدمت TAX-01" in text and "حضوری" in text
    assert "agency=" not in text and "service=" not in text
    for code in ("in_person", "online"):
        assert code not in text
    names = re.sub(r"(دستگاه|خدمت) [A-Z]+(-\d+)?", "", text)
    assert "Q1-" not in text and not re.search(r"[0-9]", names)  # Persian digits only
    assert not re.search(r"[,;]", names), re.findall(r".{20}[,;].{20}", names)  # ، and ؛
    for word in ("طراحی نمونه", "تراکنش‌ها و نمونه‌گیری", "خروج از حساب"):
        assert word in text


def test_the_persian_audit_page_is_persian_and_right_to_left(signed_in: Browsers) -> None:
    answer = signed_in["admin"].get("/audit")
    assert answer.status_code == 200
    html = answer.text
    assert '<html lang="fa" dir="rtl">' in html
    text = _persian_text(html)
    assert "دفتر رویدادها" in text and "ورود" in text  # user.login in words
    assert not re.search(r"[A-Za-z0-9]", text), re.findall(r".{15}[A-Za-z0-9].{15}", text)
    english = signed_in["admin"].get("/audit?lang=en").text
    assert '<html lang="en" dir="ltr">' in english and "signed in" in english


def test_the_persian_ingestion_page_names_the_plans_services(signed_in: Browsers) -> None:
    html = signed_in["viewer"].get("/ingestion").text
    text = re.sub(r"(دستگاه|خدمت) [A-Z]+(-\d+)?", "", _persian_text(html))  # builder names
    assert not re.search(r"[A-Za-z]", text), re.findall(r".{15}[A-Za-z].{15}", text)
