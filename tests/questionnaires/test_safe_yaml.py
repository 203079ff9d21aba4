"""YAML without aliases and within a node budget: what every file from outside goes through."""

from __future__ import annotations

import time

import pytest
import yaml

from questionnaires.errors import QuestionnaireError
from questionnaires.loading import loads_yaml
from questionnaires.safe_yaml import SafeYamlLoader, YamlRefused, load_yaml

# The "billion laughs": each level multiplies the one before by nine.
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_plain_documents_load_as_safe_load_does() -> None:
    text = "name: plan\nrates:\n  - {agency: TAX, rate: 0.5}\nstarts: 2026-03-21\nempty:\n"
    assert load_yaml(text) == yaml.safe_load(text)
    assert load_yaml("") is None


def test_the_alias_bomb_is_refused_at_once_naming_the_line() -> None:
    started = time.perf_counter()
    with pytest.raises(YamlRefused) as refused:
        load_yaml(BOMB)
    assert time.perf_counter() - started < 1.0  # refused before anything is expanded
    assert refused.value.line == 1 and "anchors (&a) are not allowed" in str(refused.value)


def test_a_lone_alias_and_a_lone_anchor_are_refused() -> None:
    with pytest.raises(YamlRefused, match=r"aliases \(\*x\) are not allowed"):
        load_yaml("a: 1\nb: *x\n")
    with pytest.raises(YamlRefused, match=r"line 2: anchors \(&keep\)"):
        load_yaml("a: 1\nb: &keep 2\n")


def test_documents_past_the_node_budget_are_refused() -> None:
    wide = "[" + ", ".join(["1"] * 50) + "]"
    assert load_yaml(wide, max_nodes=51) == [1] * 50
    with pytest.raises(YamlRefused, match="more than 50 values"):
        load_yaml(wide, max_nodes=50)


def test_refusals_are_yaml_errors_for_callers_that_catch_those() -> None:
    loader = SafeYamlLoader("b: *x")
    with pytest.raises(yaml.YAMLError):
        loader.get_single_data()
    loader.dispose()


def test_a_questionnaire_file_with_aliases_is_a_located_problem() -> None:
    with pytest.raises(QuestionnaireError) as refused:
        loads_yaml(BOMB, file="bomb.yaml")
    (problem,) = refused.value.problems
    assert (problem.code, problem.line) == ("syntax", 1)
    assert "anchors (&a) are not allowed" in problem.message
