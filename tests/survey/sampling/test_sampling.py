"""Central Poisson sampling, tested as a pure function: no database, no server."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binom

from survey.sampling.draw import PlanSpec, Unit, decide, decide_many, plan_in_force

KEY = b"k" * 32


@dataclass
class _Row:
    """Stands in for a stored SamplingPlan: the attributes PlanSpec.from_row reads."""

    id: int | None = 1
    version: int = 1
    starts: date = date(2026, 1, 1)
    seed: str = "ab" * 16
    strata: list[str] = field(default_factory=lambda: ["agency", "service", "channel"])
    default_rate: float = 0.5
    rates: list[dict[str, Any]] = field(default_factory=list)
    contact_rule_days: int = 90
    questionnaires: list[dict[str, Any]] = field(default_factory=list)


def _plan(**values: Any) -> PlanSpec:
    return PlanSpec.from_row(_Row(**values))


def _version(plan: PlanSpec | None) -> int | None:
    return None if plan is None else plan.version


RATES = [
    {"service": "TAX-01", "channel": "in_person", "rate": 1.0},
    {"service": "TAX-01", "rate": 0.2},
    {"agency": "SSO", "rate": 0.05},
    {"agency": "SSO", "service": "SSO-02", "rate": 0.3},
    {"channel": "kiosk", "rate": 0.0},
]


def test_the_most_specific_matching_rule_wins() -> None:
    plan = _plan(rates=RATES)
    assert plan.rate(Unit("TAX", "1", "TAX-01", "in_person")) == 1.0
    assert plan.rate(Unit("TAX", "1", "TAX-01", "online")) == 0.2
    assert plan.rate(Unit("SSO", "1", "SSO-01", "online")) == 0.05
    assert plan.rate(Unit("SSO", "1", "SSO-02", "online")) == 0.3
    assert plan.rate(Unit("MUN", "1", "MUN-01", "kiosk")) == 0.0
    assert plan.rate(Unit("MUN", "1", "MUN-01", "online")) == 0.5


def test_the_draw_is_the_documented_hmac() -> None:
    plan = _plan()
    decision = decide(KEY, plan, Unit("TAX", "tx-42", "TAX-02", "online"))
    digest = hmac.new(KEY, bytes.fromhex("ab" * 16) + b"TAX\x1ftx-42", hashlib.sha256).digest()
    assert decision.u == int.from_bytes(digest[:8], "big") / 2**64
    assert decision.sampled is (decision.u < 0.5)
    assert decision.inclusion_probability == 0.5
    assert decision.stratum == "agency=TAX|service=TAX-02|channel=online"


def test_stratum_keys_follow_the_plans_dimensions() -> None:
    plan = _plan(strata=["province", "agency"])
    assert (
        plan.stratum_key(Unit("TAX", "1", "TAX-01", "online", "fars")) == "province=fars|agency=TAX"
    )
    assert plan.stratum_key(Unit("TAX", "1", "TAX-01", "online")) == "province=|agency=TAX"


def test_observed_fractions_lie_in_the_binomial_band_over_100000_transactions() -> None:
    plan = _plan(rates=RATES)
    cells = [
        ("TAX", "TAX-01", "in_person"),
        ("TAX", "TAX-01", "online"),
        ("TAX", "TAX-02", "online"),
        ("SSO", "SSO-01", "phone"),
        ("SSO", "SSO-02", "online"),
    ]
    units = [
        Unit(agency, f"{agency}-{n}", service, channel)
        for n in range(20_000)
        for agency, service, channel in cells
    ]
    decisions = decide_many(KEY, plan, units)
    size: Counter[str] = Counter()
    sampled: Counter[str] = Counter()
    rate_of: dict[str, float] = {}
    for decision in decisions:
        size[decision.stratum] += 1
        sampled[decision.stratum] += decision.sampled
        rate_of[decision.stratum] = decision.inclusion_probability
    assert sum(size.values()) == 100_000
    for stratum, n in size.items():
        p = rate_of[stratum]
        low, high = binom.ppf(0.0005, n, p), binom.ppf(0.9995, n, p)
        assert low <= sampled[stratum] <= high, (stratum, sampled[stratum], n * p)
    assert sampled["agency=TAX|service=TAX-01|channel=in_person"] == 20_000


def test_decide_many_agrees_with_decide() -> None:
    plan = _plan(rates=RATES)
    units = [Unit("TAX", f"x{n}", "TAX-02", "online") for n in range(500)]
    assert decide_many(KEY, plan, units) == [decide(KEY, plan, u) for u in units]


def test_a_resend_gets_the_same_decision() -> None:
    plan = _plan()
    unit = Unit("TAX", "tx-7", "TAX-02", "online")
    assert decide(KEY, plan, unit) == decide(KEY, _plan(), Unit("TAX", "tx-7", "TAX-02", "online"))


def test_a_different_secret_or_seed_gives_different_decisions() -> None:
    plan = _plan()
    units = [Unit("TAX", f"tx-{n}", "TAX-02", "online") for n in range(2_000)]
    base = [d.sampled for d in decide_many(KEY, plan, units)]
    other_key = [d.sampled for d in decide_many(b"q" * 32, plan, units)]
    other_seed = [d.sampled for d in decide_many(KEY, _plan(seed="cd" * 16), units)]
    for other in (other_key, other_seed):
        disagreements = sum(a != b for a, b in zip(base, other, strict=True))
        # Independent draws at rate 0.5 disagree half the time (99.9% band: about 925-1075).
        assert 900 < disagreements < 1100


def test_identity_fields_are_separated() -> None:
    plan = _plan()
    a = decide(KEY, plan, Unit("AB", "C", "S", "online"))
    b = decide(KEY, plan, Unit("A", "BC", "S", "online"))
    assert a.u != b.u


def test_the_plan_in_force_is_the_latest_started() -> None:
    plans = [
        _plan(id=1, version=1, starts=date(2026, 1, 1)),
        _plan(id=2, version=2, starts=date(2026, 4, 1)),
        _plan(id=3, version=3, starts=date(2026, 4, 1)),
    ]
    assert plan_in_force(plans, date(2025, 12, 31)) is None
    assert _version(plan_in_force(plans, date(2026, 3, 31))) == 1
    assert _version(plan_in_force(plans, date(2026, 4, 1))) == 3


def test_questionnaire_rules_prefer_the_channel_specific_one() -> None:
    plan = _plan(
        questionnaires=[
            {"service": "TAX-01", "questionnaire": "core", "mode": "sms_link"},
            {
                "service": "TAX-01",
                "channel": "phone",
                "questionnaire": "short",
                "mode": "sms_dialog",
            },
        ]
    )
    phone = plan.questionnaire_for("TAX-01", "phone")
    online = plan.questionnaire_for("TAX-01", "online")
    assert phone is not None and phone.questionnaire == "short"
    assert online is not None and online.questionnaire == "core"
    assert plan.questionnaire_for("TAX-02", "online") is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"strata": ["agency", "colour"]}, "unknown dimension 'colour'"),
        ({"default_rate": 1.5}, "rate must be between 0 and 1"),
        ({"rates": [{"office": "x", "rate": 0.1}]}, "unknown dimension 'office'"),
        ({"rates": [{"service": "x"}]}, "has no rate"),
    ],
)
def test_bad_plans_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _plan(**values)


def test_sampling_is_pure() -> None:
    """No web framework or database in the sampling module: values in, values out."""
    import ast
    import sys

    import survey.sampling.draw

    tree = ast.parse(Path(survey.sampling.draw.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
