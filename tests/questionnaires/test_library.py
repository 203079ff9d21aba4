"""The bundled instruments: valid, bilingual, versioned, and stable through every format."""

from __future__ import annotations

import json

import pytest

from questionnaires import (
    Questionnaire,
    dumps_yaml,
    library_path,
    load,
    load_library,
    loads_json,
    loads_yaml,
    read_xlsform,
    sms_prompt,
    write_xlsform,
)

BUNDLED = ["core-transaction", "service-desk", "sms-short"]


@pytest.fixture(scope="module")
def library() -> dict[str, Questionnaire]:
    return load_library()


def test_library_holds_the_three_instruments(library):
    assert sorted(library) == BUNDLED
    assert sorted(p.stem for p in library_path().glob("*.yaml")) == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_each_file_validates(name):
    questionnaire = load(library_path() / f"{name}.yaml")
    assert questionnaire.id == name and questionnaire.version == 1
    assert 1 <= len(questionnaire.sms) <= 3
    assert all(item.sms_answerable for item in questionnaire.sms_items)


@pytest.mark.parametrize("name", BUNDLED)
def test_round_trip_through_xlsform(library, tmp_path, name):
    original = library[name]
    path = write_xlsform(original, tmp_path / f"{name}.xlsx")
    again = read_xlsform(path)
    assert again == original
    assert again.content_hash() == original.content_hash()


@pytest.mark.parametrize("name", BUNDLED)
def test_round_trip_through_dict_json_and_yaml(library, name):
    original = library[name]
    assert Questionnaire.from_dict(original.to_dict()) == original
    assert loads_json(json.dumps(original.to_dict(), ensure_ascii=False)) == original
    assert loads_yaml(dumps_yaml(original)) == original


def test_content_hash_changes_with_content(library):
    original = library["sms-short"]
    data = original.to_dict()
    assert original.content_hash() == Questionnaire.from_dict(data).content_hash()
    data["items"][0]["text"]["en"] = "How happy were you with the service?"
    changed = Questionnaire.from_dict(data)
    assert changed.content_hash() != original.content_hash()
    assert len(original.content_hash()) == 64


def test_questionnaires_are_immutable(library):
    with pytest.raises(Exception, match="frozen"):
        library["sms-short"].version = 2  # type: ignore[misc]


def test_core_has_the_drivers_trust_and_improvement(library):
    core = library["core-transaction"]
    ids = {item.id for item in core.items}
    assert {
        "q_overall",
        "q_time",
        "q_respect",
        "q_competence",
        "q_information",
        "q_fairness",
        "q_ease",
        "q_outcome",
        "q_trust",
        "q_improve",
    } <= ids
    assert core.item("q_improve").type.value == "text"
    assert core.item("q_next_steps").condition is not None


def test_sms_prompts_fit_two_sms_parts(library):
    """A Persian text is UCS-2: 67 characters per part when split, at most two parts."""
    for questionnaire in library.values():
        for item_id in questionnaire.sms:
            assert len(sms_prompt(questionnaire, item_id, "fa")) <= 2 * 67
            assert len(sms_prompt(questionnaire, item_id, "en")) <= 2 * 153


def test_item_lookup_names_known_ids(library):
    with pytest.raises(KeyError, match="q_overall"):
        library["sms-short"].item("q_missing")


def test_content_hash_ignores_spelled_out_defaults(library):
    original = library["sms-short"]
    data = original.to_dict()
    data["items"][1]["required"] = False  # the default, now written out
    assert Questionnaire.from_dict(data).content_hash() == original.content_hash()
    data["items"][1]["required"] = True
    assert Questionnaire.from_dict(data).content_hash() != original.content_hash()
