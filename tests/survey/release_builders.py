"""Responses for release tests: two agencies, three services, two provinces, answered in two
Solar Hijri months (1404-12 and 1405-01), with frame counts, through `AnswerWorld`."""

from __future__ import annotations

from datetime import date

import numpy as np

from survey.context import AppContext
from tests.survey.answer_builders import AnswerWorld

FARVARDIN_DAY = date(2026, 3, 25)  # 1405-01-05
ESFAND_DAY = date(2026, 3, 1)  # 1404-12-10
CELLS = (
    ("TAX", "TAX-01", "in_person", "tehran"),
    ("TAX", "TAX-01", "in_person", "fars"),
    ("TAX", "TAX-02", "online", "tehran"),
    ("EDU", "EDU-01", "online", "tehran"),
    ("EDU", "EDU-01", "online", "fars"),
)
ITEMS = ("q_time", "q_respect", "q_competence", "q_information", "q_fairness", "q_ease")


def answered_period(
    world: AnswerWorld,
    day: date,
    *,
    per_cell: int = 20,
    seed: int = 1,
    shift: dict[str, int] | None = None,
    frames: bool = True,
) -> int:
    """`per_cell` completed responses in every cell on `day` (and the cells' frame counts:
    20 times the respondents eligible, twice sampled). `shift` moves an agency's answers up
    or down (clipped to 1..5). Returns the number of responses stored."""
    rng = np.random.default_rng(seed)
    shift = shift or {}
    stored = 0
    for agency, service, channel, province in CELLS:
        cell = {"agency": agency, "service": service, "channel": channel, "province": province}
        if frames:
            world.frame_count(**cell, day=day, eligible=20 * per_cell, sampled=2 * per_cell)
        base = rng.integers(2, 6, size=per_cell)
        noise = rng.integers(-1, 2, size=(per_cell, len(ITEMS)))
        for row in range(per_cell):
            overall = int(np.clip(base[row] + shift.get(agency, 0), 1, 5))
            answers = {"q_overall": overall}
            for column, item in enumerate(ITEMS):
                answers[item] = int(np.clip(overall + noise[row, column], 1, 5))
            world.respond(world.invite(**cell, day=day, inclusion_probability=0.1), answers)
            stored += 1
    return stored


def release_world(context: AppContext) -> AnswerWorld:
    """Both months answered; EDU is better liked than TAX in 1405-01."""
    world = AnswerWorld(context)
    answered_period(world, ESFAND_DAY, seed=7)
    answered_period(world, FARVARDIN_DAY, seed=8, shift={"EDU": 1, "TAX": -1})
    return world
