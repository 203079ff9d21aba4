"""Web answering through the real app: links, resume, submit once, CSRF, validation, opt-out."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.context import AppContext
from survey.kernel.tokens import token_for
from survey.models import OptOut
from tests.survey.answer_builders import AnswerWorld, Invited

CSRF = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
FULL = {
    "q_overall": "4",
    "q_time": "5",
    "q_respect": "na",
    "q_competence": "3",
    "q_information": "4",
    "q_fairness": "5",
    "q_ease": "2",
    "q_outcome": "1",
    "q_trust": "4",
    "q_improve": "نوبت‌دهی اینترنتی",
}


@pytest.fixture
def world(context: AppContext) -> AnswerWorld:
    return AnswerWorld(context)


def _open(client: TestClient, token: str, query: str = "") -> tuple[Any, str]:
    page = client.get(f"/s/{token}{query}")
    assert page.status_code == 200, page.text[:300]
    match = CSRF.search(page.text)
    assert match, "the form has no CSRF field"
    return page, match[1]


def _post(client: TestClient, token: str, csrf: str, answers: dict[str, Any], action: str) -> Any:
    data: dict[str, Any] = {"_csrf_token": csrf, "action": action, **answers}
    return client.post(f"/s/{token}", data=data, follow_redirects=False)


def test_form_is_persian_rtl_by_default_with_security_headers(
    client: TestClient, world: AnswerWorld
) -> None:
    invited = world.invite()
    page, _ = _open(client, invited.token)
    assert '<html lang="fa" dir="rtl">' in page.text
    assert "روی هم رفته" in page.text
    assert 'name="action" value="save" class="save" formnovalidate' in page.text
    assert 'name="action" value="submit"' in page.text
    assert f"/s/{invited.token}/opt-out" in page.text
    assert "<script" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in page.headers["cache-control"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert len(page.content) < 40_000
    row = world.invitation(invited.invitation_id)
    assert row.status == "opened" and row.opened_at == world.context.clock()


def test_english_from_the_invitation_or_the_switch(client: TestClient, world: AnswerWorld) -> None:
    english = world.invite(language="en")
    page, _ = _open(client, english.token)
    assert '<html lang="en" dir="ltr">' in page.text
    persian = world.invite()
    page, _ = _open(client, persian.token, "?lang=en")
    assert '<html lang="en" dir="ltr">' in page.text
    assert "Overall, how satisfied" in page.text
    assert f'href="/s/{persian.token}?lang=fa"' in page.text


def test_save_then_resume_from_the_same_link_then_submit(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    invited = world.invite()
    _, csrf = _open(client, invited.token)
    saved = _post(client, invited.token, csrf, {"q_overall": "2", "q_time": "۴"}, "save")
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/s/{invited.token}?lang=fa&saved=1"
    row = world.invitation(invited.invitation_id)
    assert row.status == "partial" and row.partial_at is not None
    response = world.response_of(invited.invitation_id)
    assert response is not None
    assert response.answers == {"q_overall": 2, "q_time": 4}
    assert response.status == "partial"

    page, csrf = _open(client, invited.token, "?saved=1")
    assert 'role="status"' in page.text
    assert re.search(r'id="field-q_overall-2" name="q_overall" value="2"[^>]* checked', page.text)
    assert re.search(r'id="field-q_time-4" name="q_time" value="4"[^>]* checked', page.text)

    context.clock.now += timedelta(hours=2)  # type: ignore[attr-defined]
    done = _post(client, invited.token, csrf, FULL, "submit")
    assert done.status_code == 303
    assert done.headers["location"] == f"/s/{invited.token}/thanks?lang=fa"
    thanks = client.get(done.headers["location"])
    assert thanks.status_code == 200 and "سپاس" in thanks.text
    assert thanks.headers["content-type"].startswith("text/html")
    row = world.invitation(invited.invitation_id)
    assert row.status == "completed"
    assert row.completed_at == context.clock()
    response = world.response_of(invited.invitation_id)
    assert response is not None and response.status == "completed"
    assert response.answers["q_improve"] == "نوبت‌دهی اینترنتی"
    assert response.answers["q_respect"] == "na"
    assert "q_next_steps" not in response.answers


def test_double_submit_is_refused_politely_and_answers_stay(
    client: TestClient, world: AnswerWorld
) -> None:
    invited = world.invite()
    _, csrf = _open(client, invited.token)
    assert _post(client, invited.token, csrf, FULL, "submit").status_code == 303
    first = world.response_of(invited.invitation_id)
    again = _post(client, invited.token, csrf, {**FULL, "q_overall": "1"}, "submit")
    assert again.status_code == 404
    assert "این پیوند دیگر باز نیست" in again.text and "no longer open" in again.text
    after = world.response_of(invited.invitation_id)
    assert first is not None and after is not None
    assert after.answers == first.answers and after.updated_at == first.updated_at


def test_closed_and_unknown_links_get_identical_pages(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    completed = world.invite()
    _, csrf = _open(client, completed.token)
    _post(client, completed.token, csrf, FULL, "submit")
    expired = world.invite(expires_in=timedelta(hours=1))
    context.clock.now += timedelta(hours=2)  # type: ignore[attr-defined]
    expired_status = world.invite(status="expired")
    opted = world.invite(status="opted_out")
    unknown = token_for(b"another secret entirely, 32 bytes!", 7)
    pages = [
        client.get(f"/s/{token}")
        for token in (
            completed.token,
            expired.token,
            expired_status.token,
            opted.token,
            unknown,
            "not-a-token",
        )
    ]
    assert {p.status_code for p in pages} == {404}
    assert len({p.text for p in pages}) == 1
    assert pages[0].headers["referrer-policy"] == "no-referrer"
    assert pages[0].headers["content-type"].startswith("text/html")
    assert "_csrf_token" not in pages[0].text


def test_guessing_is_rate_limited(client: TestClient, world: AnswerWorld) -> None:
    invited = world.invite()
    statuses = [
        client.get(f"/s/{token_for(b'guesser secret guesser secret 32', i)}").status_code
        for i in range(1, 26)
    ]
    assert statuses[:20] == [404] * 20
    assert set(statuses[20:]) == {429}
    # A working link is still served from that address: citizens behind the same carrier
    # address are never refused for someone else's guessing.
    assert client.get(f"/s/{invited.token}").status_code == 200


def test_sixty_citizens_behind_one_address_all_get_through(
    client: TestClient, world: AnswerWorld
) -> None:
    """A carrier puts many phones behind one address: each link has its own limit."""
    invited = [world.invite() for _ in range(60)]
    for _ in range(3):  # open, save, open again: about what answering takes
        assert {client.get(f"/s/{i.token}").status_code for i in invited} == {200}
    hammered = [client.get(f"/s/{invited[0].token}").status_code for _ in range(80)]
    assert hammered[-1] == 429 and 429 not in hammered[:50]  # one link alone has a limit


def test_token_of_one_invitation_cannot_post_to_another(
    client: TestClient, world: AnswerWorld
) -> None:
    mine, theirs = world.invite(), world.invite()
    _, csrf = _open(client, mine.token)
    refused = _post(client, theirs.token, csrf, FULL, "submit")
    assert refused.status_code == 403
    assert world.response_of(theirs.invitation_id) is None


def test_csrf_refusals(client: TestClient, world: AnswerWorld) -> None:
    invited = world.invite()
    _, csrf = _open(client, invited.token)
    missing = client.post(f"/s/{invited.token}", data={"action": "submit", **FULL})
    assert missing.status_code == 403
    assert f'href="/s/{invited.token}?lang=fa"' in missing.text
    forged = _post(client, invited.token, "0" * 64, FULL, "submit")
    assert forged.status_code == 403
    client.cookies.clear()
    no_cookie = _post(client, invited.token, csrf, FULL, "submit")
    assert no_cookie.status_code == 403
    assert world.response_of(invited.invitation_id) is None


def test_item_problems_are_shown_on_the_page(client: TestClient, world: AnswerWorld) -> None:
    invited = world.invite(language="en")
    _, csrf = _open(client, invited.token)
    bad = {
        "q_time": "7",
        "q_fairness": "na",
        "q_improve": "x" * 501,
        "q_trust": ["4", "5"],
        "q_ease": "3",
    }
    page = _post(client, invited.token, csrf, bad, "submit")
    assert page.status_code == 200
    text = page.text
    assert 'role="alert"' in text
    for item_id in ("q_overall", "q_time", "q_fairness", "q_improve", "q_trust"):
        assert f'id="error-{item_id}"' in text, item_id
    assert "Please answer this question." in text
    assert "Please choose only one option." in text
    assert "longer than allowed" in text
    assert 'id="error-q_ease"' not in text
    assert "x" * 501 in text  # the citizen's text comes back to shorten, not lost
    response = world.response_of(invited.invitation_id)
    assert response is not None and response.answers == {"q_ease": 3}
    assert world.invitation(invited.invitation_id).status == "partial"


def test_display_conditions_drop_hidden_answers(client: TestClient, world: AnswerWorld) -> None:
    invited = world.invite()
    _, csrf = _open(client, invited.token)
    _post(client, invited.token, csrf, {"q_outcome": "2", "q_next_steps": "1"}, "save")
    response = world.response_of(invited.invitation_id)
    assert response is not None
    assert response.answers == {"q_outcome": 2, "q_next_steps": 1}
    page, csrf = _open(client, invited.token)
    assert 'id="item-q_next_steps"' in page.text
    _post(client, invited.token, csrf, {"q_outcome": "1", "q_next_steps": "1"}, "save")
    response = world.response_of(invited.invitation_id)
    assert response is not None and response.answers == {"q_outcome": 1}


def test_opt_out_from_the_page(client: TestClient, world: AnswerWorld, context: AppContext) -> None:
    invited = world.invite()
    page = client.get(f"/s/{invited.token}/opt-out")
    assert page.status_code == 200
    csrf = CSRF.search(page.text)
    assert csrf is not None
    done = client.post(f"/s/{invited.token}/opt-out", data={"_csrf_token": csrf[1]})
    assert done.status_code == 200
    assert "۱۲" in done.text
    row = world.invitation(invited.invitation_id)
    assert row.status == "opted_out" and row.opted_out_at == context.clock()
    with context.read_sessions() as session:
        opt_out = session.scalar(sa.select(OptOut))
    assert opt_out is not None and opt_out.active and opt_out.source == "web"
    assert opt_out.phone_hash == context.vault.phone_hash(invited.phone)
    assert client.get(f"/s/{invited.token}").status_code == 404


def test_reused_links_keep_one_response(client: TestClient, world: AnswerWorld) -> None:
    invited: Invited = world.invite()
    for _ in range(3):
        _, csrf = _open(client, invited.token)
        _post(client, invited.token, csrf, {"q_overall": "3"}, "save")
    with world.context.read_sessions() as session:
        count = session.execute(sa.text("SELECT count(*) FROM response")).scalar()
    assert count == 1


def test_blank_form_cache_gives_the_page_rendering_gives(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    from survey.answering.forms import WebAnswering
    from survey.answering.visits import BlankForms, form_page

    first, second = world.invite(), world.invite(language="en")
    service = WebAnswering.from_context(context)
    cache = BlankForms()
    for invited in (first, second, first):
        state = service.open(invited.token)
        for lang in ("fa", "en"):
            direct = form_page(state, invited.token, lang, "f" * 64)
            assert cache.page(state, invited.token, lang, "f" * 64) == direct
            assert BlankForms.TOKEN not in direct


def test_csrf_cookie_attributes_and_a_forged_cookie_is_not_echoed(
    client: TestClient, world: AnswerWorld
) -> None:
    invited = world.invite()
    page, _ = _open(client, invited.token)
    cookie = page.headers["set-cookie"]
    nonce = re.match(r"s_csrf=([A-Za-z0-9_-]{16,64}); ", cookie)
    assert nonce, cookie
    parts = {p.strip() for p in cookie.split(";")}
    assert {"HttpOnly", "Path=/s/", "SameSite=Lax", "Secure"} <= parts  # the base URL is https
    again = client.get(f"/s/{invited.token}")  # the browser sends its cookie back: kept
    assert again.headers["set-cookie"].startswith(f"s_csrf={nonce[1]};")
    client.cookies.clear()
    forged = client.get(f"/s/{invited.token}", headers={"Cookie": 's_csrf="x,y Path=/"'})
    assert forged.status_code == 200
    fresh = re.match(r"s_csrf=([A-Za-z0-9_-]{16,64}); ", forged.headers["set-cookie"])
    assert fresh and fresh[1] != nonce[1]
