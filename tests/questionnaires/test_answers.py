"""Reading submitted form fields and SMS digits into stored answers."""

from __future__ import annotations

import pytest

from questionnaires import (
    AnswerError,
    Questionnaire,
    load_library,
    parse_answer,
    parse_form,
    render_form,
    score_response,
)


@pytest.fixture(scope="module")
def core() -> Questionnaire:
    return load_library()["core-transaction"]


@pytest.mark.parametrize(
    ("item_id", "raw", "stored"),
    [
        ("q_overall", "4", 4),
        ("q_overall", " ۵ ", 5),  # Persian digit
        ("q_overall", "٣", 3),  # Arabic-Indic digit
        ("q_overall", ["2"], 2),
        ("q_respect", "na", "na"),
        ("q_respect", "NA", "na"),
        ("q_next_steps", "2", 2),
        ("q_improve", "  Shorter queues  ", "Shorter queues"),
        ("q_overall", "", None),
        ("q_overall", None, None),
        ("q_overall", [], None),
    ],
)
def test_parse_answer(core, item_id, raw, stored):
    assert parse_answer(core.item(item_id), raw) == stored


@pytest.mark.parametrize(
    ("item_id", "raw", "reason"),
    [
        ("q_overall", "6", "invalid"),
        ("q_overall", "0", "invalid"),
        ("q_overall", "four", "invalid"),
        ("q_overall", "na", "invalid"),  # q_overall offers no "not applicable"
        ("q_overall", ["1", "2"], "invalid"),
        ("q_outcome", "9", "invalid"),
        ("q_improve", "x" * 501, "too_long"),
    ],
)
def test_parse_answer_refuses(core, item_id, raw, reason):
    with pytest.raises(AnswerError) as caught:
        parse_answer(core.item(item_id), raw)
    assert caught.value.reason == reason
    assert item_id in str(caught.value)


def test_multi_choice_is_stored_as_sorted_codes(base):
    base["items"].append(
        {
            "id": "q_where",
            "type": "multi_choice",
            "text": {"fa": "کجا؟", "en": "Where?"},
            "choices": [{"code": c, "label": {"fa": f"ج{c}", "en": f"c{c}"}} for c in (1, 2, 3)],
        }
    )
    item = Questionnaire.from_dict(base).item("q_where")
    assert parse_answer(item, ["3", "1", "3"]) == "1 3"
    with pytest.raises(AnswerError):
        parse_answer(item, ["1", "7"])


def test_parse_form_drops_hidden_items_and_reports_in_the_citizens_language(core):
    form = {
        "q_overall": "9",
        "q_time": "۴",
        "q_outcome": "1",
        "q_next_steps": "1",  # hidden: the outcome was "fully done"
        "q_improve": "",
        "csrf": "ignored",
    }
    read = parse_form(core, form, "en", final=True)
    assert read.answers == {"q_time": 4, "q_outcome": 1}
    assert read.errors == {
        "q_overall": "That answer is not one of the choices; please choose again."
    }
    assert not read.ok


def test_required_only_checked_on_final_submit(core):
    assert parse_form(core, {"q_time": "3"}, "fa").ok
    final = parse_form(core, {"q_time": "3"}, "fa", final=True)
    assert final.errors == {"q_overall": "لطفاً به این پرسش پاسخ دهید."}


def test_conditional_item_read_when_shown(core):
    read = parse_form(core, {"q_overall": "5", "q_outcome": "3", "q_next_steps": "2"}, "en")
    assert read.answers == {"q_overall": 5, "q_outcome": 3, "q_next_steps": 2}


def test_form_round_trip_render_parse_score(core):
    """What parse_form stores renders back as checked and scores without error."""
    form = {"q_overall": "4", "q_respect": "na", "q_ease": "5", "q_time": "3", "q_fairness": "2"}
    read = parse_form(core, form, "en", final=True)
    assert read.ok
    html = render_form(core, "en", answers=read.answers, errors=read.errors)
    assert 'value="na" checked' in html and 'value="4" checked' in html
    result = score_response(core, read.answers)
    # min_items is 4: q_overall (x2), q_ease, q_time, q_fairness answered; q_respect n/a
    assert result["index"] == pytest.approx((2 * 75 + 100 + 50 + 25) / 5)
    assert result["satisfied"] == 1.0
