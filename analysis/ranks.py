"""Ranks of domains (agencies) with rank intervals: ranks are uncertain, so show it.

Each estimate is drawn many times from its sampling distribution (normal, or Student t
with the estimate's degrees of freedom, centred on the estimate with its standard error;
independent samples), the domains are ranked in every draw, and the interval is the
central ``level`` range of each domain's simulated ranks. This is the simulation form of
the rank intervals of Goldstein and Spiegelhalter (1996, "League tables and their
limitations", JRSS A 159: 385-443) and of Marshall and Spiegelhalter (1998, BMJ 316:
1701-1704); Hall and Miller (2009, "Using the bootstrap to quantify the authority of an
empirical ranking", Annals of Statistics 37: 3929-3959) study its behaviour. The intervals
are marginal (one per domain), not a joint region (Klein, Wright and Wieczorek 2020).

A fixed seed makes a release reproducible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["rank_intervals"]


def rank_intervals(
    estimate: np.ndarray | pd.Series,
    se: np.ndarray | pd.Series,
    df: np.ndarray | pd.Series | None = None,
    *,
    level: float = 0.95,
    draws: int = 10_000,
    seed: int = 20_250_101,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Rank (1 = best) of each estimate and its simulated interval.

    Returns a DataFrame aligned with the input: ``rank`` (of the point estimates, ties get
    the best rank they share), ``rank_low``, ``rank_high``. Missing estimates get missing
    ranks and take no part. A standard error of 0 or missing draws the estimate itself.
    """
    est = np.asarray(estimate, dtype=float)
    sd = np.nan_to_num(np.asarray(se, dtype=float), nan=0.0)
    k = est.size
    rank = np.full(k, np.nan)
    low = np.full(k, np.nan)
    high = np.full(k, np.nan)
    ok = np.isfinite(est)
    m = int(ok.sum())
    if m:
        sign = 1.0 if higher_is_better else -1.0
        values = sign * est[ok]
        rank[ok] = pd.Series(-values).rank(method="min").to_numpy()
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((draws, m))
        if df is not None:
            dof = np.asarray(df, dtype=float)[ok]
            finite = np.isfinite(dof) & (dof > 0)
            if finite.any():
                # t draws: normal / sqrt(chi2/df), the same stream for every release
                chi = rng.chisquare(np.where(finite, dof, 1.0), size=(draws, m))
                noise = np.where(finite, noise / np.sqrt(chi / np.where(finite, dof, 1.0)), noise)
        simulated = values + noise * sd[ok]
        order = np.argsort(-simulated, axis=1, kind="stable")
        ranks = np.empty_like(order)
        rows = np.arange(draws)[:, None]
        ranks[rows, order] = np.arange(1, m + 1)
        tail = (1 - level) / 2
        low[ok] = np.floor(np.quantile(ranks, tail, axis=0, method="lower"))
        high[ok] = np.ceil(np.quantile(ranks, 1 - tail, axis=0, method="higher"))
        # the interval always holds the point rank
        low[ok] = np.minimum(low[ok], rank[ok])
        high[ok] = np.maximum(high[ok], rank[ok])
    out = pd.DataFrame({"rank": rank, "rank_low": low, "rank_high": high})
    return out.astype("Int64")
