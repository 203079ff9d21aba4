"""XLSForm import of the mappable subset, with per-row problems, and export conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from questionnaires import (
    Condition,
    Questionnaire,
    QuestionnaireError,
    read_xlsform,
    write_xlsform,
)
from questionnaires.relevant import RelevantSyntaxError, from_relevant, to_relevant

FA, EN = "label::Persian (fa)", "label::English (en)"
SETTINGS_HEADER = [
    "form_id",
    "version",
    "title::Persian (fa)",
    "title::English (en)",
    "intro::Persian (fa)",
    "intro::English (en)",
    "sms",
    "index",
    "min_items",
    "satisfied",
]
SETTINGS_ROW = [
    "odk-form",
    "3",
    "فرم",
    "Form",
    "سلام",
    "Hello",
    "q_overall q_ok",
    "q_overall:2 q_nps q_ok",
    "2",
    "${q_overall} >= 4",
]


def workbook(path: Path, survey: list[list[Any]], choices: list[list[Any]], settings=None) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    choice_sheet = book.create_sheet("choices")
    for row in choices:
        choice_sheet.append(row)
    settings_sheet = book.create_sheet("settings")
    for row in settings or [SETTINGS_HEADER, SETTINGS_ROW]:
        settings_sheet.append(row)
    book.save(path)
    return path


SURVEY_HEADER = ["type", "name", FA, EN, "required", "relevant", "constraint", "parameters"]
CHOICES = [
    ["list_name", "name", FA, EN],
    ["agree5", "1", "مخالفم", "Disagree"],  # not a likert5_ list: imported as single_choice
    ["agree5", "2", "موافقم", "Agree"],
    ["likert5_sat", "1", "ناراضی", "Unhappy"],
    ["likert5_sat", "2", "۲", "2"],
    ["likert5_sat", 3, "۳", "3"],  # numeric cells are fine
    ["likert5_sat", "4", "۴", "4"],
    ["likert5_sat", "5", "راضی", "Happy"],
    ["likert5_sat", "na", "مورد ندارد", "Does not apply"],
    ["yes_no", "1", "بله", "Yes"],
    ["yes_no", "2", "خیر", "No"],
    ["where", 1, "تهران", "Tehran"],
    ["where", 2, "شیراز", "Shiraz"],
    ["where", 3, "تبریز", "Tabriz"],
]


def odk_survey() -> list[list[Any]]:
    return [
        SURVEY_HEADER,
        ["start", "start"],
        ["select_one likert5_sat", "q_overall", "راضی هستید؟", "Satisfied?", "yes"],
        ["select_one yes_no", "q_ok", "کار انجام شد؟", "Done?", "TRUE"],
        ["select_multiple where", "q_where", "کجا؟", "Where?", "", "${q_ok} = 2"],
        ["integer", "q_nps", "نمره؟", "Score?", "", "", ". >= 0 and . <= 10"],
        ["range", "q_nps2", "نمره؟", "Score?", "", "", "", "start=0 end=10 step=1"],
        [
            "text",
            "q_why",
            "چرا؟",
            "Why?",
            "",
            "selected(${q_where}, '1') or (${q_overall} < 3 and ${q_ok} != '')",
            "string-length(.) <= 300",
        ],
        ["select_one agree5", "q_agree", "موافقید؟", "Agree?"],
        ["text", "q_note", "نکته", "Note"],
    ]


def test_import_of_an_odk_style_form(tmp_path):
    path = workbook(tmp_path / "odk.xlsx", odk_survey(), CHOICES)
    skipped: list[Any] = []
    questionnaire = read_xlsform(path, skip_unsupported=True, on_skip=skipped.append)
    assert [p.code for p in skipped] == ["xlsform-unsupported-type"]
    assert (skipped[0].sheet, skipped[0].row) == ("survey", 2)
    assert questionnaire.id == "odk-form" and questionnaire.version == 3
    kinds = {item.id: item.type.value for item in questionnaire.items}
    assert kinds == {
        "q_overall": "likert5",
        "q_ok": "yes_no",
        "q_where": "multi_choice",
        "q_nps": "rating0_10",
        "q_nps2": "rating0_10",
        "q_why": "text",
        "q_agree": "single_choice",
        "q_note": "text",
    }
    overall = questionnaire.item("q_overall")
    assert overall.required and overall.not_applicable
    assert overall.ends is not None and overall.ends.high.en == "Happy"
    assert questionnaire.item("q_ok").required
    assert questionnaire.item("q_why").max_length == 300
    assert questionnaire.item("q_note").max_length == 500
    assert questionnaire.item("q_where").condition == Condition(item="q_ok", op="eq", value=2)
    why = questionnaire.item("q_why").condition
    assert why is not None and why.model_dump(exclude_none=True) == {
        "any": (
            {"item": "q_where", "op": "in", "values": (1,)},
            {
                "all": (
                    {"item": "q_overall", "op": "lt", "value": 3},
                    {"item": "q_ok", "op": "answered"},
                )
            },
        )
    }
    assert questionnaire.sms == ("q_overall", "q_ok")
    assert [(e.item, e.weight) for e in questionnaire.scoring.index] == [
        ("q_overall", 2.0),
        ("q_nps", 1.0),
        ("q_ok", 1.0),
    ]


def test_unsupported_rows_fail_without_skip(tmp_path):
    path = workbook(tmp_path / "odk.xlsx", odk_survey(), CHOICES)
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path)
    (problem,) = caught.value.problems
    assert (problem.code, problem.sheet, problem.row) == ("xlsform-unsupported-type", "survey", 2)
    assert "sheet 'survey' row 2" in str(problem)


def test_per_row_problems_name_sheet_row_and_cause(tmp_path):
    survey = [
        SURVEY_HEADER,
        ["select_one likert5_sat", "q_overall", "راضی هستید؟", "Satisfied?"],
        ["geopoint", "q_where", "کجا؟", "Where?"],
        ["select_one nowhere", "q_list", "؟", "?"],
        ["select_one yes_no", "q_ok", "کار انجام شد؟", "", "maybe"],
        ["text", "q_why", "چرا؟", "Why?", "", "${q_overall} * 2 > 3"],
        ["integer", "q_count", "چند؟", "How many?"],
        ["select_one bad", "q_bad", "بد", "Bad"],
        ["text", "q_len", "؟", "?", "", "", "regex(., '[0-9]+')"],
    ]
    choices = [*CHOICES, ["bad", "one", "یک", "One"], ["bad", "2", "دو", "Two"]]
    path = workbook(tmp_path / "bad.xlsx", survey, choices)
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path)
    found = {(p.code, p.sheet, p.row, p.item) for p in caught.value.problems}
    assert found == {
        ("xlsform-unsupported-type", "survey", 3, "q_where"),
        ("xlsform-unknown-list", "survey", 4, "q_list"),
        ("missing-translation", "survey", 5, "q_ok"),
        ("invalid-value", "survey", 5, "q_ok"),
        ("xlsform-relevant", "survey", 6, "q_why"),
        ("xlsform-unsupported-type", "survey", 7, "q_count"),
        ("xlsform-choice-code", "choices", 15, "q_bad"),
        ("xlsform-constraint", "survey", 9, "q_len"),
        ("scoring-unknown-item", "settings", 2, None),  # index names q_nps, not in this form
    }
    assert "type 'geopoint' has no equivalent" in str(caught.value)


def test_schema_problems_point_at_the_row(tmp_path):
    survey = [
        SURVEY_HEADER,
        ["select_one likert5_sat", "q_overall", "راضی هستید؟", "Satisfied?", "", "${q_ok} = 1"],
        ["select_one yes_no", "q_ok", "کار انجام شد؟", "Done?"],
        ["integer", "q_nps", "نمره؟", "Score?", "", "", ". >= 0 and . <= 10"],
    ]
    path = workbook(tmp_path / "later.xlsx", survey, CHOICES)
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path)
    (problem,) = caught.value.problems
    assert (problem.code, problem.sheet, problem.row) == ("condition-later-item", "survey", 2)


def test_settings_problems(tmp_path):
    bad_settings = [SETTINGS_HEADER, ["odk-form", "2024-03", "فرم", "", "سلام", "Hello", "", ""]]
    survey = [SURVEY_HEADER, ["select_one likert5_sat", "q_overall", "راضی؟", "Satisfied?"]]
    path = workbook(tmp_path / "s.xlsx", survey, CHOICES, settings=bad_settings)
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path)
    codes = {(p.code, p.sheet) for p in caught.value.problems}
    assert ("xlsform-setting", "settings") in codes  # version is not a whole number
    assert ("missing-translation", "settings") in codes  # English title empty


def test_missing_survey_sheet_and_unreadable_file(tmp_path):
    book = Workbook()
    book.active.title = "questions"
    book.save(tmp_path / "nosurvey.xlsx")
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(tmp_path / "nosurvey.xlsx")
    assert caught.value.codes == ["xlsform-missing-sheet"]
    (tmp_path / "broken.xlsx").write_text("not a workbook")
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(tmp_path / "broken.xlsx")
    assert caught.value.codes == ["file-unreadable"]


def test_export_follows_the_documented_conventions(base, tmp_path):
    questionnaire = Questionnaire.from_dict(base)
    path = write_xlsform(questionnaire, tmp_path / "out.xlsx")
    book = load_workbook(path)
    survey = [row for row in book["survey"].iter_rows(values_only=True)]
    assert survey[0][:4] == ("type", "name", FA, EN)
    types = {row[1]: row[0] for row in survey[1:]}
    assert types == {
        "q_overall": "select_one likert5_q_overall",
        "q_outcome": "select_one choices_q_outcome",
        "q_why": "text",
        "q_recommend": "select_one rating0_10_q_recommend",
        "q_staffed": "select_one yes_no",
    }
    why = next(row for row in survey if row[1] == "q_why")
    assert why[5] == "${q_outcome} = 2" and why[6] == "string-length(.) <= 200"
    names = [
        r[1]
        for r in book["choices"].iter_rows(values_only=True)
        if r[0] == "rating0_10_q_recommend"
    ]
    assert names == [str(c) for c in range(11)] + ["na"]
    settings = list(book["settings"].iter_rows(values_only=True))
    row = dict(zip(settings[0], settings[1], strict=True))
    assert row["index"] == "q_overall:2 q_recommend q_staffed"
    assert row["satisfied"] == "${q_overall} >= 4"
    assert read_xlsform(path) == questionnaire


@pytest.mark.parametrize(
    "condition",
    [
        {"item": "q", "op": "eq", "value": 1},
        {"item": "q", "op": "ne", "value": 0},
        {"item": "q", "op": "gt", "value": 7},
        {"item": "q", "op": "in", "values": [1, 3]},
        {"item": "q", "op": "not_in", "values": [2]},
        {"item": "q", "op": "answered"},
        {
            "all": [
                {"item": "a", "op": "in", "values": [1, 2]},
                {"item": "b", "op": "le", "value": 3},
            ]
        },
        {
            "any": [
                {"item": "a", "op": "eq", "value": 1},
                {"all": [{"item": "b", "op": "answered"}, {"item": "c", "op": "lt", "value": 2}]},
            ]
        },
    ],
)
def test_relevant_round_trip(condition):
    parsed = Condition.model_validate(condition)
    assert from_relevant(to_relevant(parsed)) == parsed


def test_relevant_accepts_common_spellings():
    assert from_relevant("3 <= ${q}") == Condition(item="q", op="ge", value=3)
    assert from_relevant("${q} = '2'") == Condition(item="q", op="eq", value=2)
    assert from_relevant("${a} = 1 OR ${a} = 2").any is not None


@pytest.mark.parametrize(
    "text",
    [
        "${q} + 1 > 2",
        "count-selected(${q}) > 1",
        "${q} = 'abc'",
        "not(${q} = 1)",
        "${q} =",
        ". > 1",
    ],
)
def test_relevant_outside_the_subset_is_refused(text):
    with pytest.raises(RelevantSyntaxError):
        from_relevant(text)


def test_missing_language_column_is_reported_once(tmp_path):
    survey = [
        ["type", "name", "label", FA],
        ["select_one likert5_sat", "q_overall", "Satisfied?", "راضی هستید؟"],
        ["select_one yes_no", "q_ok", "Done?", "کار انجام شد؟"],
    ]
    settings = [SETTINGS_HEADER, [*SETTINGS_ROW[:7], "q_overall q_ok"]]
    path = workbook(tmp_path / "nolang.xlsx", survey, CHOICES, settings)
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path)
    assert caught.value.codes == ["xlsform-missing-column", "xlsform-unsupported-column"]
    missing, unsupported = caught.value.problems
    assert (missing.sheet, missing.row) == ("survey", 1)
    assert "'label::English (en)'" in missing.message
    assert "column 'label'" in unsupported.message
    skipped: list[object] = []
    with pytest.raises(QuestionnaireError) as caught:
        read_xlsform(path, skip_unsupported=True, on_skip=skipped.append)
    assert caught.value.codes == ["xlsform-missing-column"] and len(skipped) == 1
