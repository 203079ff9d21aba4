"""The web answering page and SMS prompts."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from questionnaires import Questionnaire, load_library, render_form, sms_prompt


class Page(HTMLParser):
    """Collects tags with their attributes, and label texts by their ``for`` target."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self._label_for: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label":
            self._label_for = attributes.get("for")
            self.labels[self._label_for or ""] = ""

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None

    def handle_data(self, data):
        if self._label_for is not None:
            self.labels[self._label_for] += data

    def all(self, tag: str, **match: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in match.items())
        ]


@pytest.fixture(scope="module")
def core() -> Questionnaire:
    return load_library()["core-transaction"]


@pytest.mark.parametrize(("lang", "direction", "other"), [("fa", "rtl", "en"), ("en", "ltr", "fa")])
def test_language_and_direction(core, lang, direction, other):
    page = Page(render_form(core, lang))
    (html,) = page.all("html")
    assert (html["lang"], html["dir"]) == (lang, direction)
    (switch,) = page.all("a", hreflang=other)
    assert switch["href"] == f"?lang={other}"


def test_persian_page_uses_persian_texts_and_digits(core):
    html = render_form(core, "fa")
    assert core.title.fa in html and core.item("q_overall").text.fa in html
    assert "۱ – خیلی ناراضی" in html
    assert core.title.en not in html


def test_every_input_has_a_label_and_choice_items_a_fieldset(core):
    page = Page(render_form(core, "en"))
    inputs = [a for a in page.all("input") if a.get("type") in ("radio", "checkbox")]
    assert inputs
    for attributes in inputs:
        assert page.labels.get(str(attributes["id"]), "").strip()
    (textarea,) = page.all("textarea")
    assert page.labels[str(textarea["id"])].startswith(core.item("q_improve").text.en)
    assert textarea["maxlength"] == "500"
    fieldsets = {a["id"] for a in page.all("fieldset")}
    assert "item-q_overall" in fieldsets and "item-q_outcome" in fieldsets
    assert len(page.all("legend")) == len(fieldsets)


def test_no_javascript(core):
    page = Page(render_form(core, "fa"))
    assert not page.all("script")
    assert not any(k.startswith("on") for _, a in page.tags for k in a)


def test_conditional_item_shows_only_when_its_condition_holds(core):
    assert 'name="q_next_steps"' not in render_form(core, "en")
    assert 'name="q_next_steps"' not in render_form(core, "en", answers={"q_outcome": 1})
    shown = render_form(core, "en", answers={"q_outcome": "3"})
    assert 'name="q_next_steps"' in shown
    assert "Do you know what you need to do next?" in shown


def test_answers_prefill_and_not_applicable(core):
    page = Page(
        render_form(core, "en", answers={"q_overall": 4, "q_respect": "na", "q_improve": "Faster"})
    )
    checked = {(a["name"], a["value"]) for a in page.all("input") if "checked" in a}
    assert checked == {("q_overall", "4"), ("q_respect", "na")}
    html = render_form(core, "en", answers={"q_improve": "Faster <b>"})
    assert "Faster &lt;b&gt;</textarea>" in html


def test_required_items_and_the_form_plumbing(core):
    page = Page(
        render_form(
            core,
            "en",
            action_url="/s/abc",
            csrf_token="tok123",
            hidden={"lang": "en"},
            stylesheet_url="/static/form.css",
        )
    )
    (form,) = page.all("form")
    assert (form["method"], form["action"]) == ("post", "/s/abc")
    assert page.all("input", type="hidden", name="_csrf_token", value="tok123")
    assert page.all("input", type="hidden", name="lang", value="en")
    assert all("required" in a for a in page.all("input", name="q_overall"))
    assert not any("required" in a for a in page.all("input", name="q_time"))
    assert page.all("link", rel="stylesheet", href="/static/form.css")
    assert page.all("button", type="submit")


def test_inline_style_for_previews_is_not_escaped(core):
    html = render_form(core, "en")
    assert "<style>" in html and '"Vazirmatn"' in html


def test_errors_are_shown_at_their_items(core):
    html = render_form(core, "en", errors={"q_overall": "Please choose one."})
    page = Page(html)
    (fieldset,) = page.all("fieldset", id="item-q_overall")
    assert fieldset["aria-describedby"] == "error-q_overall"
    assert "Please choose one." in html and 'role="alert"' in html


def test_rating_and_multi_choice(base):
    base["items"].append(
        {
            "id": "q_where",
            "type": "multi_choice",
            "text": {"fa": "کجا؟", "en": "Where?"},
            "choices": [
                {"code": 1, "label": {"fa": "تهران", "en": "Tehran"}},
                {"code": 2, "label": {"fa": "شیراز", "en": "Shiraz"}},
            ],
        }
    )
    questionnaire = Questionnaire.from_dict(base)
    page = Page(render_form(questionnaire, "en", answers={"q_where": "1 2", "q_recommend": 9}))
    assert len(page.all("input", type="checkbox", name="q_where")) == 2
    assert all("checked" in a for a in page.all("input", name="q_where"))
    values = [a["value"] for a in page.all("input", name="q_recommend")]
    assert values == [str(v) for v in range(11)] + ["na"]
    assert "checked" in page.all("input", name="q_recommend", value="9")[0]


def test_unknown_language_is_refused(core):
    with pytest.raises(ValueError, match="'de'"):
        render_form(core, "de")


def test_sms_prompts(core):
    assert sms_prompt(core, "q_overall", "en") == (
        "Overall, how satisfied are you with the service you received? "
        "Reply with one digit from 1 (Very dissatisfied) to 5 (Very satisfied)."
    )
    assert sms_prompt(core, "q_overall", "fa") == (
        "روی هم رفته، از خدمتی که گرفتید چقدر راضی هستید؟ "
        "از ۱ (خیلی ناراضی) تا ۵ (خیلی راضی)، یک رقم بفرستید."
    )
    desk = load_library()["service-desk"]
    assert sms_prompt(desk, "q_desk_staffed", "en").endswith("Reply 1 for yes, 2 for no.")
    assert "1 = It was fully done, 2 = It was partly done" in sms_prompt(core, "q_outcome", "en")


def test_sms_prompt_refuses_items_one_digit_cannot_answer(core):
    with pytest.raises(ValueError, match="one digit cannot answer"):
        sms_prompt(core, "q_improve", "fa")
    with pytest.raises(KeyError):
        sms_prompt(core, "q_nothing", "fa")


def test_save_button_notice_and_links_for_the_answering_service(core):
    html = render_form(
        core,
        "fa",
        save_label="ذخیره",
        notice="پاسخ‌ها ذخیره شد.",
        links=[("/s/abc/opt-out?lang=fa", "دیگر پیامی نفرستید")],
    )
    page = Page(html)
    save, send = page.all("button")
    assert (save["name"], save["value"]) == ("action", "save") and "formnovalidate" in save
    assert (send["name"], send["value"], send["type"]) == ("action", "submit", "submit")
    assert page.all("p", role="status")
    assert page.all("a", href="/s/abc/opt-out?lang=fa")
    assert html.index("پاسخ‌ها ذخیره شد.") < html.index("<form ")
    assert html.index("دیگر پیامی نفرستید") > html.index("</form>")


def test_default_page_keeps_one_plain_submit_button(core):
    """The answering adapter in survey/web relies on these markers; keep them stable."""
    html = render_form(core, "en")
    assert html.count('<button type="submit">') == 1
    for marker in ("<form ", "</main>", "</head>", '<meta name="referrer" content="no-referrer">'):
        assert marker in html
