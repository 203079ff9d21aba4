"""Benchmark: per-agency mean + proportion on 1,000,000 synthetic responses.

500 agencies x 3 channels = 1,500 strata (each row its own PSU, fpc from frame counts).
Prints wall time (best of several runs where noted: the machine may be shared) and peak
traced memory (tracemalloc: numpy and pandas allocations) of

1. Taylor intervals (publication default: Satterthwaite df, Korn-Graubard);
2. a 200-replicate Rao-Wu bootstrap (building the replicates, then estimating);
3. raking on two margins (channel, province), then estimating with calibration residuals;

and, when the optional ``svy`` package is installed, its time on the Taylor task.

    .venv/bin/python bench/estimate.py [--rows 1000000] [--replicates 200]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from analysis import SurveyDesign


def synthetic(rows: int, agencies: int, seed: int = 20261124) -> pd.DataFrame:
    """Responses with agency, channel, province, stratum, N_h, weight, index, satisfied."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0, 1.2, agencies)
    agency = rng.choice(agencies, rows, p=size / size.sum())
    channel = rng.choice(3, rows, p=[0.5, 0.3, 0.2])
    stratum = agency * 3 + channel
    province = rng.integers(0, 31, rows)
    responses = np.bincount(stratum, minlength=agencies * 3)
    frame_count = (responses * rng.uniform(5, 50, agencies * 3)).round() + responses
    quality = rng.normal(65, 10, agencies)[agency]
    index = np.clip(rng.normal(quality, 20), 0, 100).round()
    frame = pd.DataFrame(
        {
            "agency": agency,
            "channel": channel,
            "province": province,
            "stratum": stratum,
            "N_h": frame_count[stratum],
            "index": index,
            "satisfied": (index >= 60).astype(np.int8),
        }
    )
    frame["w"] = frame["N_h"] / responses[stratum]
    # every stratum needs two responses for a variance: drop strata with one
    keep = responses[stratum] >= 2
    return frame[keep].reset_index(drop=True)


def measure(label: str, work: Callable[[], Any], repeat: int = 1) -> Any:
    """Run ``work`` ``repeat`` times; print the best time and the peak traced memory."""
    best = float("inf")
    peak = 0
    for _ in range(repeat):
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
    runs = f"best of {repeat}" if repeat > 1 else "1 run"
    print(f"{label:<50s} {best:8.3f} s ({runs:9s})  peak +{peak / 2**20:7.1f} MiB")
    return result


def per_agency(design: SurveyDesign) -> tuple[pd.DataFrame, pd.DataFrame]:
    return design.mean("index", by="agency"), design.proportion("satisfied", by="agency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=500)
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args()

    frame = synthetic(args.rows, args.agencies)
    print(
        f"{len(frame):,} responses, {frame['agency'].nunique()} agencies, "
        f"{frame['stratum'].nunique()} strata, {args.replicates} bootstrap replicates"
    )
    import analysis.estimators  # noqa: F401  (warm imports: scipy.stats takes ~1 s)

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    design = measure(
        "design (factorise strata, fpc)",
        lambda: SurveyDesign(frame, weights="w", strata="stratum", fpc="N_h"),
    )
    measure("Taylor: per-agency mean + proportion (first call)", lambda: per_agency(design))
    measure(
        "Taylor: per-agency mean + proportion (codes cached)",
        lambda: per_agency(design),
        repeat=5,
    )
    replicated = measure(
        f"bootstrap: build {args.replicates} replicates",
        lambda: design.replicate("bootstrap", replicates=args.replicates, seed=1),
    )
    measure("bootstrap: per-agency mean + proportion", lambda: per_agency(replicated), repeat=3)
    margins = {
        "channel": (frame.groupby("channel")["w"].sum() * 1.02).to_dict(),
        "province": (
            frame.groupby("province")["w"].sum() * (frame["w"].sum() * 1.02 / frame["w"].sum())
        ).to_dict(),
    }
    raked = measure("raking: two margins (3 + 31 cells)", lambda: design.rake(margins))
    measure("raking: per-agency mean + proportion", lambda: per_agency(raked), repeat=3)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak traced memory over all steps: {peak / 2**20:.0f} MiB; max RSS {rss:.0f} MiB")
    try:
        import svy  # noqa: F401  (optional peer, not a dependency)
    except ImportError:
        print("svy: not installed (optional); no side-by-side figure")


if __name__ == "__main__":
    main()
