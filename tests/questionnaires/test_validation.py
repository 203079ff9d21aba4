"""Invalid files give specific, located problem codes, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from questionnaires import PROBLEM_CODES, Problem, Questionnaire, QuestionnaireError, load


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(QuestionnaireError) as caught:
        load(path)
    assert all(p.code in PROBLEM_CODES for p in caught.value.problems)
    return caught.value.problems


def test_valid_base_loads(base, write_yaml):
    questionnaire = load(write_yaml(base))
    assert isinstance(questionnaire, Questionnaire)
    assert [i.id for i in questionnaire.items][:2] == ["q_overall", "q_outcome"]


def test_unknown_type(base, write_yaml):
    base["items"][1]["type"] = "likert7"
    (problem,) = problems_of(write_yaml(base))
    assert problem.code == "unknown-type"
    assert problem.item == "q_outcome"
    assert "likert7" in problem.message and "likert5" in problem.message


def test_duplicate_id_points_at_second_occurrence(base, write_yaml):
    base["items"][4]["id"] = "q_overall"
    base["scoring"]["index"] = base["scoring"]["index"][:2]
    path = write_yaml(base)
    problems = problems_of(path)
    assert [p.code for p in problems] == ["duplicate-id"]
    line = problems[0].line
    assert line is not None
    assert (
        path.read_text(encoding="utf-8")
        .splitlines()[line - 1]
        .lstrip("- ")
        .startswith(("id: q_overall", "ends:", "text:", "required:", "type:"))
    )
    assert line > 20  # the second q_overall, not the first


def test_condition_on_later_item_message(base, write_yaml):
    base["items"][1]["condition"] = {"item": "q_why", "op": "answered"}
    path = write_yaml(base, "core.yaml")
    (problem,) = problems_of(path)
    assert problem.code == "condition-later-item"
    assert problem.item == "q_outcome"
    assert f"{path}:" in str(problem)
    assert "item 'q_outcome': condition refers to 'q_why', which comes later" in str(problem)


def test_condition_on_itself_and_unknown_item(base, write_yaml):
    base["items"][1]["condition"] = {"item": "q_outcome", "op": "answered"}
    base["items"][2]["condition"] = {"item": "q_nothing", "op": "eq", "value": 1}
    codes = [p.code for p in problems_of(write_yaml(base))]
    assert codes == ["condition-later-item", "condition-unknown-item"]


def test_condition_value_and_op_must_fit_the_item(base, write_yaml):
    base["items"][2]["condition"] = {"item": "q_outcome", "op": "in", "values": [2, 7]}
    base["items"][3]["condition"] = {"item": "q_why", "op": "eq", "value": 1}
    problems = problems_of(write_yaml(base))
    assert [(p.code, p.item) for p in problems] == [
        ("condition-value", "q_why"),
        ("condition-op", "q_recommend"),
    ]


def test_condition_shape_is_checked(base, write_yaml):
    base["items"][2]["condition"] = {"item": "q_outcome", "op": "in", "value": 2}
    (problem,) = problems_of(write_yaml(base))
    assert problem.code == "invalid-value"
    assert "'values'" in problem.message


def test_sms_item_not_answerable_by_a_digit(base, write_yaml):
    base["sms"] = ["q_overall", "q_recommend"]
    (problem,) = problems_of(write_yaml(base))
    assert (problem.code, problem.item) == ("sms-not-digit", "q_recommend")


def test_sms_single_choice_needs_codes_1_to_9(base, write_yaml):
    base["items"][1]["choices"][0]["code"] = 10
    (problem,) = problems_of(write_yaml(base))
    assert (problem.code, problem.item) == ("sms-not-digit", "q_outcome")


def test_more_than_three_sms_items(base, write_yaml):
    base["sms"] = ["q_overall", "q_outcome", "q_staffed", "q_overall"]
    codes = [p.code for p in problems_of(write_yaml(base))]
    assert codes == ["sms-too-many", "sms-duplicate"]


def test_missing_translation(base, write_yaml):
    del base["items"][0]["ends"]["high"]["en"]
    base["title"] = {"fa": "آزمون", "en": "  "}
    problems = problems_of(write_yaml(base))
    assert {p.code for p in problems} == {"missing-translation"}
    assert [p.item for p in problems] == [None, "q_overall"]
    assert "English (en)" in problems[1].message and "ends.high" in problems[1].message


def test_text_instead_of_translations(base, write_yaml):
    base["items"][0]["text"] = "How satisfied are you?"
    (problem,) = problems_of(write_yaml(base))
    assert problem.code == "missing-translation"
    assert "fa: ..., en: ..." in problem.message


def test_yaml_syntax_error_has_line(write_yaml):
    path = write_yaml("id: x\nversion: 1\nitems:\n  - id: a\n   type: b\n")
    (problem,) = problems_of(path)
    assert problem.code == "syntax"
    assert problem.line == 5
    assert str(problem).startswith(f"{path}:5:")


def test_duplicate_yaml_key_is_refused(write_yaml):
    path = write_yaml("id: x\nversion: 1\nid: y\n")
    (problem,) = problems_of(path)
    assert (problem.code, problem.line) == ("syntax", 3)
    assert "'id' appears twice" in problem.message


def test_json_syntax_error_has_line(write_yaml):
    (problem,) = problems_of(write_yaml('{\n  "id": "x",\n  oops\n}', "form.json"))
    assert (problem.code, problem.line) == ("syntax", 3)


def test_json_file_loads(base, write_yaml):
    import json

    assert load(write_yaml(json.dumps(base), "form.json")).id == "test-form"


def test_unsupported_extension_and_missing_file(tmp_path):
    (problem,) = problems_of(tmp_path / "form.txt")
    assert problem.code == "file-type"
    (problem,) = problems_of(tmp_path / "absent.yaml")
    assert problem.code == "file-unreadable"


def test_document_not_a_mapping(write_yaml):
    (problem,) = problems_of(write_yaml("- just\n- a list\n"))
    assert problem.code == "not-a-mapping"


def test_all_problems_of_a_file_at_once(base, write_yaml):
    base["items"][1]["type"] = "likert7"  # structural
    base["items"][4]["id"] = "q_overall"  # duplicate
    base["items"][2]["condition"] = {"item": "q_recommend", "op": "answered"}  # later
    base["sms"] = ["q_why"]  # text in sms
    base["intro"] = {"fa": "سلام"}  # missing en
    base["extra"] = 1  # unknown field
    codes = {p.code for p in problems_of(write_yaml(base))}
    assert codes >= {
        "unknown-type",
        "duplicate-id",
        "condition-later-item",
        "sms-not-digit",
        "missing-translation",
        "unknown-field",
    }


def test_problems_are_in_file_order(base, write_yaml):
    base["items"][3]["type"] = "nps"
    base["items"][0]["text"] = {"fa": "x"}
    lines = [p.line for p in problems_of(write_yaml(base))]
    assert lines == sorted(lines)
    assert None not in lines


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d["items"][0].pop("ends"), "type-field"),
        (lambda d: d["items"][2].pop("max_length"), "type-field"),
        (lambda d: d["items"][4].update(max_length=3), "type-field"),
        (lambda d: d["items"][1]["choices"].pop(), "type-field"),
        (lambda d: d["items"][1]["choices"][1].update(code=1), "duplicate-choice"),
        (lambda d: d["items"][2].update(not_applicable=True), "na-not-allowed"),
        (lambda d: d["items"][2].update(id="Q why"), "bad-id"),
        (lambda d: d.update(version=0), "invalid-value"),
        (lambda d: d.update(version="1"), "invalid-value"),
        (lambda d: d.pop("scoring"), "missing-field"),
        (lambda d: d["items"][0].update(colour="red"), "unknown-field"),
        (lambda d: d["scoring"]["index"].append({"item": "q_why"}), "scoring-item-type"),
        (lambda d: d["scoring"]["index"].append({"item": "q_zzz"}), "scoring-unknown-item"),
        (lambda d: d["scoring"]["index"].append({"item": "q_overall"}), "scoring-duplicate"),
        (lambda d: d["scoring"].update(min_items=4), "scoring-min-items"),
        (lambda d: d["sms"].append("q_zzz"), "sms-unknown-item"),
        (
            lambda d: d["scoring"].update(satisfied={"item": "q_overall", "op": "ge", "value": 6}),
            "condition-value",
        ),
    ],
)
def test_each_rule_has_its_code(base, write_yaml, change, code):
    change(base)
    assert code in [p.code for p in problems_of(write_yaml(base))]


def test_from_dict_raises_the_same_problems(base):
    base["items"][1]["type"] = "likert7"
    with pytest.raises(QuestionnaireError) as caught:
        Questionnaire.from_dict(base, file="dict")
    assert caught.value.codes == ["unknown-type"]
    assert caught.value.problems[0].file == "dict"


def test_one_bad_item_gives_no_spurious_list_error(base, write_yaml):
    base["items"] = base["items"][:1]
    base["items"][0]["required"] = "often"
    base["sms"], base["scoring"] = [], {"index": [{"item": "q_overall"}]}
    (problem,) = problems_of(write_yaml(base))
    assert (problem.code, problem.item) == ("invalid-value", "q_overall")
    assert "'required'" in problem.message and "'often'" in problem.message


def test_load_folder_reports_every_file_and_duplicate_versions(base, write_yaml, tmp_path):
    from questionnaires import load_folder

    write_yaml(base, "a.yaml")
    base["version"] = 2
    write_yaml(base, "b.yaml")
    assert [(q.id, q.version) for q in load_folder(tmp_path)] == [
        ("test-form", 1),
        ("test-form", 2),
    ]
    write_yaml(base, "c.yaml")  # version 2 again
    write_yaml("id: [", "d.yaml")
    (tmp_path / "notes.txt").write_text("not a questionnaire")
    with pytest.raises(QuestionnaireError) as caught:
        load_folder(tmp_path)
    assert [(Path(p.file).name, p.code) for p in caught.value.problems] == [
        ("c.yaml", "duplicate-version"),
        ("d.yaml", "syntax"),
    ]
    assert "b.yaml" in caught.value.problems[0].message
