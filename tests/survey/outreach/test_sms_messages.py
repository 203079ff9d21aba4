"""SMS texts: part counting at the GSM-7 and UCS-2 boundaries, opt-out hints, the two-part
limit, and invitations that always name the agency (and the service and day where they fit)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from questionnaires.loading import load_library
from questionnaires.rendering import sms_prompt
from survey.kernel.sms import (
    INVITATION_KINDS,
    MODES,
    ONE_PART_KEYS,
    SMS_NAME_MAX,
    MessageTooLong,
    Sender,
    SmsParts,
    agency_names,
    count_parts,
    invitation_problems,
    render,
    render_invitation,
    sms_day,
    sms_name_problem,
)

URL = "https://survey.example.ir/s/uycuxjh5qmbgxymm"
BASE_40 = "https://nazarsanji.example-agency.gov.ir"  # a realistic public base URL
URL_40 = f"{BASE_40}/s/uycuxjh5qmbgxymm"
DAY = date(2026, 11, 4)  # 13 Aban 1405
DEMO_REGISTRY = Path(__file__).resolve().parents[3] / "survey/demo/data/demo-registry.yaml"
NOCR = {
    "fa": Sender(("ثبت احوال",), "صدور کارت هوشمند ملی", DAY),
    "en": Sender(("Civil Registration",), "Issuing the national smart ID card", DAY),
}


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
def test_every_invitation_starts_with_the_agency_and_ends_with_the_opt_out_hint(
    lang: str, kind: str
) -> None:
    sender = Sender(("A",))
    link = render_invitation(kind, "sms_link", lang, sender=sender, url=URL)
    dialog = render_invitation(kind, "sms_dialog", lang, sender=sender, question="Q?")
    hint = "لغو۱۱" if lang == "fa" else "STOP: 11"
    assert link.endswith("\n" + hint) and dialog.endswith("\n" + hint)
    assert link.startswith("A") and dialog.startswith("A")
    assert URL in link and "Q?" in dialog


def test_a_persian_invitation_names_agency_service_and_day_in_two_parts() -> None:
    text = render_invitation("invite", "sms_link", "fa", sender=NOCR["fa"], url=URL_40)
    assert text == (
        f"ثبت احوال: نظرتان درباره «صدور کارت هوشمند ملی» در ۱۳ آبان چیست؟ {URL_40}\nلغو۱۱"
    )
    assert count_parts(text) == SmsParts("ucs2", 130, 2)


def test_an_english_invitation_gives_the_day_in_both_calendars() -> None:
    text = render_invitation("invite", "sms_link", "en", sender=NOCR["en"], url=URL_40)
    assert text.startswith(
        'Civil Registration: your opinion of "Issuing the national smart ID card" on '
        "13 Aban (4 Nov) matters to us."
    )
    assert count_parts(text).encoding == "gsm7" and count_parts(text).parts == 2


def test_details_are_left_out_before_the_agency_ever_is() -> None:
    """A long service name goes first, then the courtesy words; the agency stays."""
    long_service = Sender(("ثبت احوال",), "ثبت دادخواست در دفتر خدمات الکترونیک قضایی", DAY)
    text = render_invitation("invite", "sms_link", "fa", sender=long_service, url=URL_40)
    assert text.startswith("ثبت احوال: نظرتان درباره خدمتی که ۱۳ آبان گرفتید")
    assert count_parts(text).parts == 2
    bare = Sender(("س" * SMS_NAME_MAX,))
    text = render_invitation("reminder", "sms_link", "fa", sender=bare, url=URL_40)
    assert text.startswith("س" * SMS_NAME_MAX + ": یادآوری")
    assert count_parts(text).parts == 2


def test_a_long_full_name_falls_back_to_its_first_words() -> None:
    names = agency_names(None, "مرکز خدمات الکترونیک قضایی قوه قضاییه")
    assert names[0] == "مرکز خدمات الکترونیک قضایی قوه قضاییه"
    assert names[-1] == "مرکز خدمات…" and len(names[-1]) <= SMS_NAME_MAX
    sender = Sender(names, "ثبت‌نام در سامانه ثنا", DAY)
    text = render_invitation("invite", "sms_link", "fa", sender=sender, url=URL_40)
    assert text.startswith("مرکز خدمات الکترونیک قضایی قوه…:")  # the longest beginning that fits
    assert count_parts(text).parts == 2
    # Latin names end with '...' (GSM-7), an SMS name is used as it is.
    assert agency_names(None, "National Organization for Civil Registration")[-1] == "National..."
    assert agency_names("  Civil  Registration ", "National Organization") == (
        "Civil Registration",
    )


def test_an_invitation_that_cannot_fit_fails_loudly_naming_the_agency() -> None:
    with pytest.raises(MessageTooLong, match=r"3 SMS parts.*even with only the agency's name"):
        render_invitation("invite", "sms_dialog", "fa", sender=Sender(("ثبت",)), question="پ" * 130)


def _demo_senders() -> list[dict[str, Sender]]:
    """Every demo service with its agency's SMS names, and again with no SMS names set (the
    fallback of the full names, the longest of which are the demo's longest names)."""
    agencies: list[dict[str, Any]] = yaml.safe_load(DEMO_REGISTRY.read_text("utf-8"))["agencies"]
    senders = []
    for agency in agencies:
        for service in agency["services"]:
            for with_sms_name in (True, False):
                senders.append(
                    {
                        lang: Sender(
                            agency_names(
                                agency[f"sms_name_{lang}"] if with_sms_name else None,
                                agency[f"name_{lang}"],
                            ),
                            service[f"name_{lang}"],
                            date(2026, 5, 21),  # 31 Ordibehesht: the longest Persian day
                        )
                        for lang in ("fa", "en")
                    }
                )
    return senders


def test_every_bundled_instrument_names_the_agency_in_two_parts_with_a_40_character_base() -> None:
    """Every invitation and reminder text of every bundled questionnaire, in both modes and
    languages (a reminder may re-ask any SMS item), for every demo service, with the agencies'
    SMS names and with their full names as the fallback: at most two parts, and the agency
    named at the start."""
    assert len(BASE_40) == 40
    senders = _demo_senders()
    longest = max(len(s["fa"].agency[0]) for s in senders)
    assert longest == len("مرکز خدمات الکترونیک قضایی قوه قضاییه")  # the fallback was tried
    url = f"{BASE_40}/s/{'x' * 16}"
    checked = 0
    for questionnaire in load_library().values():
        for mode in MODES:
            for lang in ("fa", "en"):
                prompts = [sms_prompt(questionnaire, item, lang) for item in questionnaire.sms]
                for sender in senders:
                    for kind in INVITATION_KINDS:
                        for prompt in prompts[:1] if kind == "invite" else prompts:
                            text = render_invitation(
                                kind,
                                mode,
                                lang,
                                sender=sender[lang],
                                url=url if mode == "sms_link" else None,
                                question=prompt if mode == "sms_dialog" else None,
                            )
                            assert count_parts(text).parts <= 2, text
                            assert text.startswith(sender[lang].agency), text
                            checked += 1
    assert checked > 2000


def test_the_check_of_a_plan_reports_what_cannot_fit_and_passes_what_can() -> None:
    questionnaire = load_library()["sms-short"]
    assert (
        invitation_problems(questionnaire, "sms_link", public_base_url=BASE_40, senders=NOCR) == []
    )
    found = invitation_problems(
        questionnaire, "sms_link", public_base_url="https://x.ir/" + "p" * 200, senders=NOCR
    )
    assert found and all("even with only the agency's name" in problem for problem in found)
    assert any("the fa invite for sms_link needs 5 SMS parts" in problem for problem in found)
    prompt = sms_prompt(questionnaire, "q_overall", "fa")
    text = render_invitation("invite", "sms_dialog", "fa", sender=NOCR["fa"], question=prompt)
    assert text.startswith("ثبت احوال")


@pytest.mark.parametrize("lang", ["fa", "en"])
@pytest.mark.parametrize("key", ONE_PART_KEYS)
def test_replies_and_the_opt_out_confirmation_fit_one_part(lang: str, key: str) -> None:
    assert count_parts(render(key, lang)).parts == 1
    if key == "opted_out":  # it was 71 UCS-2 units, two parts
        assert "۱۲" in render(key, "fa") and count_parts(render(key, "fa")).units <= 70


def test_sms_names_have_a_length_limit_and_english_ones_stay_gsm7() -> None:
    assert sms_name_problem("ثبت احوال", "fa") is None
    assert sms_name_problem("Civil Registration", "en") is None
    assert "at most 20 characters" in str(sms_name_problem("س" * 21, "fa"))
    assert "got 21" in str(sms_name_problem("s" * 21, "en"))
    assert "GSM-7" in str(sms_name_problem("ثبت احوال", "en"))
    assert "control character" in str(sms_name_problem("ثبت\nاحوال", "fa"))


def test_the_day_in_persian_and_in_both_calendars_in_english() -> None:
    assert sms_day(DAY, "fa") == "۱۳ آبان"
    assert sms_day(DAY, "en") == "13 Aban (4 Nov)"
    assert sms_day(date(2026, 3, 21), "fa") == "۱ فروردین"


def test_texts_exist_in_both_languages() -> None:
    assert render("thanks", "fa") != render("thanks", "en")
    with pytest.raises(Exception, match="language 'de'"):
        render("thanks", "de")
