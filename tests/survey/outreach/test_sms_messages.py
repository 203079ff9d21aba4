"""SMS texts: part counting at the GSM-7 and UCS-2 boundaries, opt-out hints, two-part limit."""

from __future__ import annotations

import pytest

from questionnaires.loading import load_library
from questionnaires.rendering import sms_prompt
from survey.outreach.messages import (
    MessageTooLong,
    SmsParts,
    check_invitation_fits,
    count_parts,
    render,
    render_invitation,
)

URL = "https://survey.example.ir/s/uycuxjh5qmbgxymm"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsParts("gsm7", 0, 1)),
        ("a" * 160, SmsParts("gsm7", 160, 1)),
        ("a" * 161, SmsParts("gsm7", 161, 2)),
        ("a" * 306, SmsParts("gsm7", 306, 2)),
        ("a" * 307, SmsParts("gsm7", 307, 3)),
        ("€" * 80, SmsParts("gsm7", 160, 1)),  # extension characters take two septets
        ("€" * 81, SmsParts("gsm7", 162, 2)),
        ("a" + "€" * 76 + "b", SmsParts("gsm7", 154, 1)),
        ("a" * 152 + "€" + "a", SmsParts("gsm7", 155, 1)),
        ("a" * 152 + "€" + "a" * 7, SmsParts("gsm7", 161, 2)),
        ("a" * 152 + "€" + "a" * 152, SmsParts("gsm7", 306, 3)),  # € is not split: 152|2+151|1
        ("س" * 70, SmsParts("ucs2", 70, 1)),
        ("س" * 71, SmsParts("ucs2", 71, 2)),
        ("س" * 134, SmsParts("ucs2", 134, 2)),
        ("س" * 135, SmsParts("ucs2", 135, 3)),
        ("a" * 69 + "۱", SmsParts("ucs2", 70, 1)),  # one Persian digit makes it all UCS-2
        ("a" * 70 + "۱", SmsParts("ucs2", 71, 2)),
        ("😀" * 35, SmsParts("ucs2", 70, 1)),  # surrogate pairs: two code units
        ("a" * 66 + "😀" + "a" * 5, SmsParts("ucs2", 73, 2)),
        ("a" * 66 + "😀" * 34, SmsParts("ucs2", 134, 3)),  # the pair at 67 is not split
    ],
)
def test_part_counting_at_the_boundaries(text: str, expected: SmsParts) -> None:
    assert count_parts(text) == expected


@pytest.mark.parametrize("lang", ["fa", "en"])
@pytest.mark.parametrize("kind", ["invite", "reminder"])
def test_every_invitation_ends_with_the_opt_out_hint(lang: str, kind: str) -> None:
    link = render_invitation(kind, "sms_link", lang, url=URL, agency="A")
    dialog = render_invitation(kind, "sms_dialog", lang, question="Q?", agency="A")
    hint = "لغو۱۱" if lang == "fa" else "STOP: 11"
    assert link.endswith("\n" + hint) and dialog.endswith("\n" + hint)
    assert URL in link


def test_persian_invitation_is_ucs2_and_in_two_parts() -> None:
    text = render_invitation("invite", "sms_link", "fa", url=URL, agency="سازمان ثبت احوال")
    assert count_parts(text).encoding == "ucs2"
    assert count_parts(text).parts <= 2
    assert "سازمان ثبت احوال" in text


def test_a_long_agency_name_is_dropped_rather_than_exceed_two_parts() -> None:
    agency = "سازمان " * 12
    text = render_invitation("invite", "sms_link", "fa", url=URL, agency=agency)
    assert "سازمان" not in text
    assert count_parts(text).parts == 2


def test_an_invitation_that_cannot_fit_fails_loudly() -> None:
    with pytest.raises(MessageTooLong, match="3 SMS parts"):
        render_invitation("invite", "sms_dialog", "fa", question="پرسش " * 30)


def test_bundled_questionnaires_fit_in_both_modes() -> None:
    for questionnaire in load_library().values():
        for mode in ("sms_link", "sms_dialog"):
            check_invitation_fits(questionnaire, mode, public_base_url="https://survey.example.ir")


def test_plan_validation_names_the_item_that_does_not_fit() -> None:
    questionnaire = load_library()["sms-short"]
    with pytest.raises(MessageTooLong) as caught:
        check_invitation_fits(
            questionnaire, "sms_link", public_base_url="https://x.ir/" + "p" * 200
        )
    assert any("invite" in p.message for p in caught.value.problems)
    prompt = sms_prompt(questionnaire, "q_overall", "fa")
    assert render_invitation("invite", "sms_dialog", "fa", question=prompt).startswith("نظرسنجی")


def test_texts_exist_in_both_languages() -> None:
    assert render("thanks", "fa") != render("thanks", "en")
    with pytest.raises(Exception, match="language 'de'"):
        render("thanks", "de")
