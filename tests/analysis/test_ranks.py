"""Rank intervals: simulated from the estimates' sampling distributions."""

from __future__ import annotations

import numpy as np

from analysis.ranks import rank_intervals


def test_clearly_separated_estimates_have_exact_ranks() -> None:
    out = rank_intervals([90.0, 50.0, 70.0], [0.5, 0.5, 0.5])
    assert out["rank"].tolist() == [1, 3, 2]
    assert out["rank_low"].tolist() == [1, 3, 2]
    assert out["rank_high"].tolist() == [1, 3, 2]


def test_overlapping_estimates_share_a_rank_interval() -> None:
    out = rank_intervals([70.0, 69.5, 40.0], [3.0, 3.0, 1.0], [30, 30, 30])
    assert out["rank"].tolist() == [1, 2, 3]
    assert (out.loc[0, "rank_low"], out.loc[0, "rank_high"]) == (1, 2)
    assert (out.loc[1, "rank_low"], out.loc[1, "rank_high"]) == (1, 2)
    assert (out.loc[2, "rank_low"], out.loc[2, "rank_high"]) == (3, 3)


def test_missing_estimates_take_no_part_and_results_are_reproducible() -> None:
    est = [60.0, np.nan, 65.0, 62.0]
    se = [2.0, np.nan, 2.0, 2.0]
    a = rank_intervals(est, se, seed=7)
    b = rank_intervals(est, se, seed=7)
    assert a.equals(b)
    assert a["rank"].isna().tolist() == [False, True, False, False]
    assert sorted(a["rank"].dropna().tolist()) == [1, 2, 3]
    assert (a["rank_low"].dropna() >= 1).all() and (a["rank_high"].dropna() <= 3).all()


def test_lower_is_better_and_empty_input() -> None:
    out = rank_intervals([1.0, 5.0], [0.01, 0.01], higher_is_better=False)
    assert out["rank"].tolist() == [1, 2]
    assert rank_intervals([], []).empty
