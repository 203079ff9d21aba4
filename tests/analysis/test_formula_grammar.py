"""The formula grammar lets every legitimate formula through and no Python at all.

Legitimate formulas must give exactly the coefficients the plain patsy formula gives through
``analysis.regression.regress``; hostile ones (the patsy code-execution payloads) must be
refused with the offending token named, and must never run: a payload that would create a
marker file is parsed, rendered and regressed, and the marker must not appear. A control
test proves the same payloads do run when handed to patsy directly, so the check is live.
"""

from __future__ import annotations

import ast
import contextlib
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis.formula_grammar as grammar
from analysis.design import SurveyDesign
from analysis.formula_grammar import FormulaError, ParsedFormula, parse_formula
from analysis.regression import regress

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def api() -> SurveyDesign:
    """R's stratified API sample, with columns named like Python's dangerous names."""
    data = pd.read_csv(DATA / "api" / "apistrat.csv")
    data = data.assign(os=data["ell"], score=data["meals"])
    return SurveyDesign(data, weights="pw", strata="stype", fpc="fpc")


@pytest.fixture(scope="module")
def export() -> SurveyDesign:
    """A small design shaped like the survey export (score_<item> columns, flags)."""
    rng = np.random.default_rng(7)
    n = 160
    stratum = np.repeat(["EDU-web", "TAX-sms"], n // 2)
    time = rng.uniform(0, 100, n)
    ease = rng.uniform(0, 100, n)
    overall = 20 + 0.5 * time + 0.2 * ease + rng.normal(0, 8, n)
    data = pd.DataFrame(
        {
            "stratum": stratum,
            "N_h": np.where(stratum == "EDU-web", 4000.0, 9000.0),
            "weight": np.where(stratum == "EDU-web", 50.0, 112.5),
            "channel": rng.choice(["online", "phone"], n),
            "score_q_time": time,
            "score_q_ease": ease,
            "score_q_overall": overall,
            "satisfied": overall > 60,
            "index": (time + ease + overall) / 3,
        }
    )
    return SurveyDesign(data, weights="weight", strata="stratum", fpc="N_h")


def _columns(design: SurveyDesign) -> list[str]:
    return [str(c) for c in design.data.columns]


# --- legitimate formulas ----------------------------------------------------------------

# (formula as a user writes it, the same model as a plain patsy formula, family)
API_MODELS = [
    ("api00 ~ ell + meals + mobility", "api00 ~ ell + meals + mobility", "gaussian"),
    ('I(sch.wide == "Yes") ~ ell + meals', 'I(sch.wide == "Yes") ~ ell + meals', "binomial"),
    ("I(sch.wide != 'No') ~ ell", 'I(sch.wide != "No") ~ ell', "binomial"),
    ("I(api00 > 700) ~ ell + meals", "I(api00 > 700) ~ ell + meals", "binomial"),
    ("api00 ~ ell * meals", "api00 ~ ell * meals", "gaussian"),
    ("api00 ~ ell + meals:mobility", "api00 ~ ell + meals:mobility", "gaussian"),
    ("api00 ~ C(stype) + ell", "api00 ~ C(stype) + ell", "gaussian"),
    ("api00 ~ C(stype, Sum) + ell", "api00 ~ C(stype, Sum) + ell", "gaussian"),
    (
        "api00 ~ C(stype, Treatment(reference='H')) + ell",
        'api00 ~ C(stype, Treatment(reference="H")) + ell',
        "gaussian",
    ),
    ("api00 ~ C(stype, Treatment('M'))", 'api00 ~ C(stype, Treatment(reference="M"))', "gaussian"),
    ("api00 ~ (ell + meals):C(stype)", "api00 ~ (ell + meals):C(stype)", "gaussian"),
    ("api00 ~ ell + I(ell ** 2)", "api00 ~ ell + I(ell ** 2)", "gaussian"),
    ("api00 ~ I(ell / 10) + I(2 * meals)", "api00 ~ I(ell / 10) + I(2 * meals)", "gaussian"),
    ("I(api00 - api99) ~ I(ell - -1.5e1)", "I(api00 - api99) ~ I(ell - -1.5e1)", "gaussian"),
    ("api00 ~ center(ell) + standardize(meals)", "api00 ~ center(ell) + standardize(meals)",
     "gaussian"),
    ("api00 ~ scale(ell)", "api00 ~ scale(ell)", "gaussian"),
    ("api00 ~ log1p(ell) + sqrt(meals)", "api00 ~ np.log1p(ell) + np.sqrt(meals)", "gaussian"),
    ("log(api00) ~ log(api99)", "np.log(api00) ~ np.log(api99)", "gaussian"),
    ("api00 ~ ell + meals - 1", "api00 ~ ell + meals - 1", "gaussian"),
    ("api00 ~ 0 + ell", "api00 ~ 0 + ell", "gaussian"),
    ("api00 ~ -1 + ell", "api00 ~ -1 + ell", "gaussian"),
    ("api00 ~ ell + yr.rnd", "api00 ~ ell + yr.rnd", "gaussian"),
    ("api00 ~ ell + Q('yr.rnd')", 'api00 ~ ell + Q("yr.rnd")', "gaussian"),
    ("api00~ell+meals", "api00 ~ ell + meals", "gaussian"),
    ("api00 ~ ell\t+ meals", "api00 ~ ell + meals", "gaussian"),
    ("api00 ~ os + score", "api00 ~ os + score", "gaussian"),
]  # fmt: skip

EXPORT_MODELS = [
    ("score_q_overall ~ score_q_time + score_q_ease + C(channel)", "gaussian"),
    ("satisfied ~ score_q_time", "binomial"),
    ("index ~ score_q_time * C(channel)", "gaussian"),
    ("I(score_q_overall >= 60) ~ center(score_q_time)", "binomial"),
]


def _same_fit(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["term"].tolist() == want["term"].tolist()
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=1e-12)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-12)


@pytest.mark.parametrize(("formula", "plain", "family"), API_MODELS)
def test_rendered_formula_fits_as_the_plain_formula(
    api: SurveyDesign, formula: str, plain: str, family: str
) -> None:
    parsed = parse_formula(formula, _columns(api))
    _same_fit(regress(api, parsed.render(), family=family), regress(api, plain, family=family))  # type: ignore[arg-type]


@pytest.mark.parametrize(("formula", "family"), EXPORT_MODELS)
def test_export_formulas_fit_unchanged(export: SurveyDesign, formula: str, family: str) -> None:
    parsed = parse_formula(formula, _columns(export))
    assert parsed.render() == formula  # already in the grammar's own spelling
    _same_fit(
        regress(export, parsed.render(), family=family), regress(export, formula, family=family)
    )  # type: ignore[arg-type]


def test_the_simulated_effect_comes_through(export: SurveyDesign) -> None:
    parsed = parse_formula("score_q_overall ~ score_q_time + score_q_ease", _columns(export))
    table = regress(export, parsed.render()).set_index("term")
    assert 0.45 < table.loc["score_q_time", "estimate"] < 0.55  # simulated 0.5
    assert 0.15 < table.loc["score_q_ease", "estimate"] < 0.25  # simulated 0.2


@pytest.mark.parametrize(
    ("formula", "rendered"),
    [
        ("y ~ x", "y ~ x"),
        ("y~x+z", "y ~ x + z"),
        ("y ~ x*z - x:z", "y ~ x * z - x:z"),
        ("y ~ -1 + x", "y ~ -1 + x"),
        ("sch.wide ~ x", 'Q("sch.wide") ~ x'),
        ("y ~ Q('sch.wide')", 'y ~ Q("sch.wide")'),
        ("y ~ log(x) + log1p(x) + sqrt(x)", "y ~ np.log(x) + np.log1p(x) + np.sqrt(x)"),
        ("y ~ np.log(x)", "y ~ np.log(x)"),
        ("y ~ C(g, Treatment(reference=-2))", "y ~ C(g, Treatment(reference=-2))"),
        ("y ~ C(g,Treatment)", "y ~ C(g, Treatment)"),
        ("y ~ I(x**.5)", "y ~ I(x ** .5)"),
        ("y ~ I(x)", "y ~ I(x)"),
        ("y ~ ((x + z)):g", "y ~ ((x + z)):g"),
        ("y ~ _private + x_1", 'y ~ Q("_private") + x_1'),
    ],
)
def test_rendering(formula: str, rendered: str) -> None:
    columns = ["y", "x", "z", "g", "sch.wide", "_private", "x_1"]
    assert parse_formula(formula, columns).render() == rendered


def test_parts_of_a_parsed_formula() -> None:
    parsed = parse_formula(
        "I(sch.wide == 'Yes') ~ ell*meals + C(stype) - 1 + log(ell)",
        ["sch.wide", "ell", "meals", "stype"],
    )
    assert parsed == ParsedFormula(
        response='I(Q("sch.wide") == "Yes")',
        terms=("ell * meals", "C(stype)", "-1", "np.log(ell)"),
        columns=("sch.wide", "ell", "meals", "stype"),
    )
    assert parsed.render() == 'I(Q("sch.wide") == "Yes") ~ ell * meals + C(stype) - 1 + np.log(ell)'


def test_public_names() -> None:
    assert grammar.__all__ == ["FormulaError", "ParsedFormula", "parse_formula"]
    assert issubclass(FormulaError, ValueError)


def test_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(grammar.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# --- hostile formulas -------------------------------------------------------------------

API_COLUMNS = [
    "api00", "api99", "ell", "meals", "mobility", "stype", "sch.wide", "yr.rnd", "os", "score",
]  # fmt: skip

# (formula, the token the error must name, where it starts)
HOSTILE = [
    ("api00 ~ I(__import__('os').system('id'))", "__import__", 10),
    ("__import__('os').system('id') ~ ell", "__import__", 0),
    ("api00 ~ score.__class__", ".__class__", 13),
    ("api00 ~ I(score.__class__.__mro__)", ".__class__.__mro__", 15),
    ("api00 ~ os.system('id')", ".system", 10),
    ("api00 ~ np.os.system('id')", "np.os.system", 8),
    ("api00 ~ C.__call__", "C.__call__", 8),
    ("api00 ~ Q('os').system", ".", 15),
    ("api00 ~ np.log(ell).__class__", ".", 19),
    ("api00 ~ (lambda: 1)()", "lambda", 9),
    ("api00 ~ ell if ell else meals", "if", 12),
    ("api00 ~ __builtins__", "__builtins__", 8),
    ("api00 ~ globals()", "globals", 8),
    ("api00 ~ exec('import os')", "exec", 8),
    ("api00 ~ eval(ell)", "eval", 8),
    ("api00 ~ open('/etc/passwd')", "open", 8),
    ("api00 ~ I(ell + open('x'))", "open", 16),
    ("api00 ~ I(len(ell))", "len", 10),
    ("api00 ~ I(center(ell))", "center", 10),
    ("api00 ~ center(ell.real)", ".real", 18),
    ("api00 ~ C(stype, __import__('os'))", "__import__", 17),
    ("api00 ~ C(stype, Treatment(reference=open('x')))", "open", 37),
    ("api00 ~ ell + 'abc'", "'abc'", 14),
    ("api00 ~ Q('nothere')", "nothere", 11),
    ('api00 ~ I(ell == "{x}")', "{", 18),
    ("api00 ~ I(ell == 'a\\'b')", "\\", 19),
    ("api00 ~ I(ell == 'unclosed)", "'unclosed)", 17),
    ("api00 ~ ell @ meals", "@", 12),
    ("api00 ~ ell[0]", "[", 11),
    ("api00 ~ {ell}", "{", 8),
    ("api00 ~ `ell`", "`", 8),
    ("api00 ~ ell # comment", "#", 12),
    ("api00 ~ ell | meals", "|", 12),
    ("api00 ~ ell % 2", "%", 12),
    ("api00 ~ ell ** 2", "**", 12),
    ("api00 ~ ell / meals", "/", 12),
    ("api00 ~ ell, meals", ",", 11),
    ("api00 ~ ell; __import__('os')", ";", 11),
    ("api00 ~ ell == 1", "==", 12),
    ("api00 ~ I(ell := 3)", ":", 14),
    ("api00 ~ I(ell ** meals)", "meals", 17),
    ("api00 ~ I(ell + 1 + 2)", "+", 18),
    ("api00 ~ I((ell + 1) ** 2)", "(", 10),
    ("api00 ~ ell + 2", "2", 14),
    ("api00 ~ ell + 0x1F", "0x1F", 14),
    ("api00 ~ ell + 1_000", "1_000", 14),
    ("api00 ~ I(ell * 1j)", "1j", 16),
    ("api00 ~ I(ell ** " + "9" * 33 + ")", "9" * 33, 17),
    ("api00 ~ ell ~ meals", "~", 12),
    ("api00 ~ ell)", ")", 11),
    ("api00 ~ (ell", "", 12),
    ("api00 ~ ell +", "", 13),
    ("api00", "", 5),
    ("~ ell", "~", 0),
    ("api00 ~ 1:ell", ":", 9),
    ("api00 ~ -ell", "-", 8),
    ("api00 ~ ell\n__import__('os')", "\n", 11),
    ("api00 ~ ell\r\n+ meals", "\r", 11),
    ("api00 ~ ell\x00", "\x00", 11),
    ("api00 ~ ell\x1b[2J", "\x1b", 11),
    ("api00 ~ \u0435ll", "\u0435", 8),  # Cyrillic e
    ("api00 ~ I(__\u0456mport__('os'))", "\u0456", 12),  # Cyrillic i
    ("api00 ~ \uff45ll", "\uff45", 8),  # fullwidth e
    ("api00 ~ ell\u200b", "\u200b", 11),  # zero-width space
    ("api00 ~ ell\u00a0+ meals", "\u00a0", 11),  # no-break space
]


@pytest.mark.parametrize(("formula", "token", "position"), HOSTILE)
def test_hostile_formula_is_refused_naming_its_token(
    formula: str, token: str, position: int
) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula(formula, API_COLUMNS)
    error = caught.value
    assert error.token == token
    assert error.position == position
    message = str(error)
    assert message.startswith("formula: ")
    assert f"position {position}" in message
    assert (repr(token) if token else "the end of the formula") in message


@pytest.mark.parametrize(
    ("formula", "start"),
    [
        ("score_q_overall ~ f\"{__import__('os').system('id > /tmp/x')}\"", 'f"{__import__'),
        ("api00 ~ ell + f'{ell}'", "f'{ell"),
        ("api00 ~ b'ell'", "b'ell"),
        ("api00 ~ rb'ell'", "rb'ell"),
        ('api00 ~ ell + F"{1}"', 'F"{1'),
        ("api00 ~ ell + ell'x'", "ell'x"),  # even when the prefix is a column
    ],
)
def test_prefixed_strings_are_refused(formula: str, start: str) -> None:
    with pytest.raises(FormulaError, match="prefixed string") as caught:
        parse_formula(formula, [*API_COLUMNS, "score_q_overall"])
    error = caught.value
    assert error.token.startswith(start)
    assert formula[error.position :].startswith(error.token)
    assert repr(start)[:-1] in str(error)


def test_unknown_names_are_explained() -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula("score_q_overall ~ score_q_tiem", ["score_q_overall", "score_q_time"])
    message = str(caught.value)
    assert "'score_q_tiem' is not a column of the data" in message
    assert "did you mean 'score_q_time'?" in message
    formula = "score_q_overall ~ I(ell + os)"
    with pytest.raises(FormulaError, match=r"'os' is not a column .* \(at position 26\)"):
        parse_formula(formula, ["score_q_overall", "ell"])
    assert formula.index("os") == 26
    with pytest.raises(FormulaError, match="Python keyword"):
        parse_formula("y ~ import", ["y"])
    with pytest.raises(FormulaError, match=r"formula function: write it as log\(column\)"):
        parse_formula("y ~ log", ["y"])
    with pytest.raises(FormulaError, match="is a column, not a formula function"):
        parse_formula("y ~ x(1)", ["y", "x"])
    with pytest.raises(FormulaError, match="not a contrast"):
        parse_formula("y ~ C(g, Poly)", ["y", "g"])


def test_a_column_that_hides_a_formula_function_is_named() -> None:
    with pytest.raises(FormulaError, match="column named 'C'") as caught:
        parse_formula("y ~ C(g)", ["y", "g", "C"])
    assert caught.value.token == "C" and caught.value.position == 4
    with pytest.raises(FormulaError, match="column named 'np'"):
        parse_formula("y ~ log(x)", ["y", "x", "np"])
    assert parse_formula("C ~ np", ["C", "np"]).render() == "C ~ np"  # used as columns: fine


def test_long_input_is_refused_before_it_is_read() -> None:
    payload = "api00 ~ " + "ell + " * 1700 + "I(__import__('os').system('id'))"
    assert len(payload) > 10_000
    with pytest.raises(FormulaError) as caught:
        parse_formula(payload, API_COLUMNS)
    error = caught.value
    assert (error.token, error.position) == (payload[:40], 500)
    assert f"{len(payload)} characters long, more than the limit of 500" in str(error)
    assert len(str(error)) < 200  # the input is not echoed whole
    assert parse_formula("y ~ " + " + ".join(["x"] * 300), ["y", "x"], max_length=2000)
    with pytest.raises(FormulaError, match="limit of 10"):
        parse_formula("y ~ x + x + x", ["y", "x"], max_length=10)


def test_deep_nesting_is_refused_without_exhausting_the_stack() -> None:
    for depth, fails in [(20, False), (21, True), (5000, True)]:
        formula = "y ~ " + "(" * depth + "x" + ")" * depth
        if not fails:
            assert parse_formula(formula, ["y", "x"]).columns == ("y", "x")
            continue
        with pytest.raises(FormulaError, match="deeper than 20 levels") as caught:
            parse_formula(formula, ["y", "x"], max_length=20_000)
        assert (caught.value.token, caught.value.position) == ("(", 4 + 20)
    with pytest.raises(FormulaError, match="deeper than 2 levels"):
        parse_formula("y ~ ((C(x)))", ["y", "x"], max_depth=2)


def test_echoed_input_is_cut_at_40_characters() -> None:
    name = "a" * 300
    with pytest.raises(FormulaError) as caught:
        parse_formula(f"y ~ {name}", ["y"])
    assert caught.value.token == name  # the attribute keeps it whole
    assert f"'{'a' * 40}...'" in str(caught.value)
    assert "a" * 41 not in str(caught.value)


def test_empty_and_non_text_formulas() -> None:
    with pytest.raises(FormulaError, match="empty formula"):
        parse_formula("   ", ["y"])
    with pytest.raises(FormulaError, match="expected text, got int"):
        parse_formula(42, ["y"])  # type: ignore[arg-type]


# --- nothing runs -----------------------------------------------------------------------

# Payloads that create {m} when patsy evaluates them (os.system variants are never run raw).
LIVE = [
    "api00 ~ ell + I(__import__('pathlib').Path('{m}').touch() or ell)",
    "api00 ~ ell + f\"{{__import__('pathlib').Path('{m}').touch()}}\"",
]
PAYLOADS = [
    *LIVE,
    "score_q_overall ~ f\"{{__import__('os').system('touch {m}')}}\"",
    "api00 ~ f\"{{__import__('os').system('touch {m}')}}\"",
    "api00 ~ I(__import__('os').system('touch {m}'))",
    "api00 ~ os.system('touch {m}')",
    "api00 ~ I(os.system('touch {m}') or ell)",
    "api00 ~ score.__class__.__init__.__globals__",
    "api00 ~ ell + (lambda: __import__('os').system('touch {m}'))()",
    "api00 ~ I(open('{m}', 'w').close() or ell)",
    "api00 ~ I(ell + open('{m}', 'w').write('x'))",
    "api00 ~ C(stype, Treatment(reference=__import__('os').system('touch {m}')))",
    "api00 ~ C(stype, __import__('pathlib').Path('{m}').touch())",
    "api00 ~ Q('os').system('touch {m}')",
    "api00 ~ I(__\u0456mport__('os').system('touch {m}'))",
    "api00 ~ ell\nI(__import__('os').system('touch {m}'))",
    "api00 ~ ell\x00 + I(__import__('os').system('touch {m}'))",
    "api00 ~ ell + \\\nI(__import__('os').system('touch {m}'))",
    "api00 ~ " + "ell + " * 1700 + "I(__import__('os').system('touch {m}'))",
    "api00 ~ " + "(" * 40 + "I(__import__('os').system('touch {m}'))" + ")" * 40,
    "api00 ~ ell; __import__('os').system('touch {m}')",
    "api00 ~ [__import__('os').system('touch {m}')]",
    "api00 ~ {{__import__('os').system('touch {m}')}}",
    "api00 ~ ell + b'{m}'",
]


def _attempt(design: SurveyDesign, formula: str) -> bool:
    """Parse, render and regress as the endpoint does; True when the grammar refused it."""
    try:
        parsed = parse_formula(formula, _columns(design), max_length=500)
    except FormulaError:
        return True
    with contextlib.suppress(Exception):
        regress(design, parsed.render())
    return False


@pytest.mark.parametrize("template", PAYLOADS)
def test_payload_never_runs(api: SurveyDesign, tmp_path: Path, template: str) -> None:
    marker = tmp_path / "MARKER"
    formula = template.format(m=marker)
    assert _attempt(api, formula), "the grammar let a payload through"
    assert not marker.exists()


@pytest.mark.parametrize("template", LIVE)
def test_control_the_payloads_run_when_patsy_gets_them_raw(
    api: SurveyDesign, tmp_path: Path, template: str
) -> None:
    """Without the grammar the same text does run: the test above is not vacuous."""
    marker = tmp_path / "MARKER"
    with contextlib.suppress(Exception):
        regress(api, template.format(m=marker))
    assert marker.exists()


# --- properties ---------------------------------------------------------------------------

_RENDERED = re.compile(r'[A-Za-z0-9_ .~+\-*/:()=<>!,"]*')
_COLUMNS = ["y", "x", "z", "g", "sch.wide"]

_column = st.sampled_from(["y", "x", "z", "g", "sch.wide", "Q('sch.wide')"])
_number = st.sampled_from(["0", "1", "2", "0.5", "1e3", "-3"])
_factor = st.one_of(
    _column,
    st.builds("C({})".format, _column),
    st.builds("C({}, Sum)".format, _column),
    st.builds("C({}, Treatment(reference='a'))".format, _column),
    st.builds(lambda f, c: f"{f}({c})", st.sampled_from(["center", "log", "sqrt"]), _column),
    st.builds(
        lambda c, op, n: f"I({c} {op} {n})",
        _column,
        st.sampled_from(["+", "-", "*", "/", "**", "==", "<"]),
        _number,
    ),
)
_term = st.recursive(
    _factor,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a}:{b}", inner, inner),
        st.builds(lambda a, b: f"{a} * {b}", inner, inner),
        st.builds(lambda a, b: f"({a} + {b})", inner, inner),
    ),
    max_leaves=6,
)
_formula = st.builds(
    lambda r, terms, tail: f"{r} ~ {' + '.join(terms)}{tail}",
    _factor,
    st.lists(_term, min_size=1, max_size=4),
    st.sampled_from(["", " - 1", " + 0"]),
)


@settings(max_examples=300, deadline=None)
@given(_formula)
def test_grammar_formulas_render_to_a_fixed_point(formula: str) -> None:
    parsed = parse_formula(formula, _COLUMNS, max_length=10_000)
    rendered = parsed.render()
    assert _RENDERED.fullmatch(rendered)
    again = parse_formula(rendered, _COLUMNS, max_length=10_000)
    assert again == parsed
    assert again.render() == rendered


@settings(max_examples=2000, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("yxzg._ ~+-*/:()=<>!,'\"\\{}[]@;#0129eEfIQCn\n\0\u0435")),
        max_size=60,
    )
)
def test_any_text_is_refused_or_renders_only_grammar_text(text: str) -> None:
    try:
        parsed = parse_formula(text, _COLUMNS)
    except FormulaError as error:
        assert 0 <= error.position <= len(text)
        if error.token and error.position < len(text) and len(text) <= 500:
            assert text[error.position :].startswith(error.token[:1])
        return
    rendered = parsed.render()
    assert _RENDERED.fullmatch(rendered)
    assert "__" not in rendered and "'" not in rendered and "\\" not in rendered
