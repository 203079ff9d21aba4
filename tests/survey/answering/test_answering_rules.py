"""Answering's pure parts (reading forms, the throttle, CSRF fields) and the submit race."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from questionnaires.loading import load_library
from questionnaires.schema import Questionnaire
from survey.answering import visits, webhooks
from survey.answering.answers import ItemProblem, read_form
from survey.answering.forms import LinkUnavailable, WebAnswering
from survey.context import AppContext
from survey.errors import InvalidInput, NotAuthenticated
from survey.kernel.csrf import CsrfSigner
from survey.kernel.limits import Bucket, RateLimit, Throttle
from tests.survey.answer_builders import AnswerWorld

CORE = load_library()["core-transaction"]


def test_codes_in_any_script_and_not_applicable() -> None:
    reading = read_form(
        CORE, {"q_overall": ["۵"], "q_time": ["٣"], "q_respect": ["na"], "q_ease": [" 2 "]}
    )
    assert reading.answers == {"q_overall": 5, "q_time": 3, "q_respect": "na", "q_ease": 2}
    assert reading.problems == ()


def test_values_that_are_not_answers_keep_the_previous_answer() -> None:
    reading = read_form(
        CORE,
        {"q_overall": ["6"], "q_time": ["na"], "q_trust": ["1", "2"], "q_ease": ["<b>"]},
        {"q_overall": 3, "q_time": 4},
    )
    assert reading.answers == {"q_overall": 3, "q_time": 4}
    assert set(reading.problems) == {
        ItemProblem("q_overall", "not_a_choice"),
        ItemProblem("q_time", "not_a_choice"),  # q_time offers no "does not apply"
        ItemProblem("q_trust", "one_answer"),
        ItemProblem("q_ease", "not_a_choice"),
    }


def test_required_only_on_submit_and_hidden_items_dropped() -> None:
    form = {"q_outcome": ["1"], "q_next_steps": ["1"]}
    saved = read_form(CORE, form)
    assert saved.problems == () and saved.answers == {"q_outcome": 1}
    submitted = read_form(CORE, form, submit=True)
    assert submitted.problems == (ItemProblem("q_overall", "required"),)


def _text(word: str) -> dict[str, str]:
    return {"fa": word, "en": word}


def test_multi_choice_codes() -> None:
    q = Questionnaire.from_dict(
        {
            "id": "multi",
            "version": 1,
            "title": _text("t"),
            "intro": _text("i"),
            "items": [
                {"id": "q_overall", "type": "likert5", "text": _text("o"),
                 "ends": {"low": _text("l"), "high": _text("h")}},
                {"id": "q_docs", "type": "multi_choice", "text": _text("d"),
                 "choices": [{"code": c, "label": _text(str(c))} for c in (1, 2, 3)]},
            ],
            "scoring": {"index": [{"item": "q_overall"}]},
        }
    )  # fmt: skip
    assert read_form(q, {"q_docs": ["3", "1"]}).answers == {"q_docs": "1 3"}
    refused = (ItemProblem("q_docs", "not_a_choice"),)
    assert read_form(q, {"q_docs": ["na"]}).problems == refused  # not offered by multi_choice
    assert read_form(q, {"q_docs": ["4"]}).problems == refused


def test_text_is_trimmed_and_control_characters_removed() -> None:
    reading = read_form(CORE, {"q_improve": ["  صف\u200cها \x07کوتاه   \r\nشود  "]})
    assert reading.answers == {"q_improve": "صف\u200cها کوتاه\nشود"}


def test_throttle_counts_requests_per_link_and_misses_per_address() -> None:
    now = [0.0]
    throttle = Throttle(
        RateLimit(requests=Bucket(3, 1.0), misses=Bucket(2, 0.1)), monotonic=lambda: now[0]
    )
    assert [throttle.allow_link("link-a") for _ in range(4)] == [True, True, True, False]
    assert throttle.allow_link("link-b")  # another link: its own bucket
    now[0] += 1.0
    assert throttle.allow_link("link-a")
    assert [throttle.record_miss("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert throttle.record_miss("10.0.0.2")  # another address
    assert throttle.allow_link("link-c")  # an address's misses never refuse a link
    now[0] += 10.0
    assert throttle.record_miss("10.0.0.1")


def test_csrf_field_is_bound_to_cookie_and_token() -> None:
    signer = CsrfSigner(bytes(range(32)))
    field = signer.field_for("nonce", "abcdefghijklmnop")
    assert signer.verify("nonce", "ABCDEFGHIJKLMNOP", field)
    assert not signer.verify("other", "abcdefghijklmnop", field)
    assert not signer.verify("nonce", "abcdefghijklmnoq", field)
    assert not signer.verify(None, "abcdefghijklmnop", field)
    assert CsrfSigner(bytes(32)).field_for("nonce", "abcdefghijklmnop") != field


def test_two_submits_at_once_complete_once(context: AppContext) -> None:
    world = AnswerWorld(context)
    invited = world.invite()
    service = WebAnswering.from_context(context)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def submit(score: str) -> None:
        barrier.wait()
        try:
            result = service.save(invited.token, {"q_overall": [score]}, submit=True)
            outcomes.append(f"completed {score}" if result.completed else "not completed")
        except LinkUnavailable:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(s,)) for s in ("2", "5")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split()[0] for o in outcomes) == ["completed", "refused"]
    winner = next(o for o in outcomes if o.startswith("completed")).split()[1]
    response = world.response_of(invited.invitation_id)
    assert response is not None and response.answers == {"q_overall": int(winner)}


def test_the_page_and_webhook_services_import_no_web_framework() -> None:
    """What the pages and webhooks do lives in modules without Litestar (the HTTP layer only
    reads requests and writes responses)."""
    code = (
        "import sys, survey.answering.visits, survey.answering.webhooks; "
        "print('litestar' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_visit_outcome_without_a_server(context: AppContext) -> None:
    world = AnswerWorld(context)
    invited = world.invite()
    parts = visits.AnsweringParts(context)
    shown = visits.show_form(parts, invited.token, visits.Visit("192.0.2.1", lang="en"))
    assert isinstance(shown, visits.FormPage) and shown.nonce
    assert f'action="/s/{invited.token}?lang=en"' in shown.html
    missing = visits.show_form(parts, "a" * 16, visits.Visit("192.0.2.1"))
    assert isinstance(missing, visits.Page)
    assert (missing.name, missing.status, missing.context["kind"]) == ("notice", 404, "unavailable")
    assert visits.thanks_page(visits.Visit("192.0.2.1", lang="xx")).context["lang"] == "fa"


def test_webhook_signatures_are_checked_before_the_body_is_read(context: AppContext) -> None:
    secret = context.settings.sms_webhook_secret
    body = b"{not json"
    with pytest.raises(NotAuthenticated):
        webhooks.inbound_reply(context, body, None)
    with pytest.raises(NotAuthenticated):
        webhooks.delivery_report(context, body, "0" * 64)
    with pytest.raises(webhooks.MalformedBody):
        webhooks.inbound_reply(context, body, webhooks.signature_for(secret, body).upper())
    wrong = b'{"local_id": "inv1-invite", "status": "read"}'
    with pytest.raises(InvalidInput):
        webhooks.delivery_report(context, wrong, webhooks.signature_for(secret, wrong))
