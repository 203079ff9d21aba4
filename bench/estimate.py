"""Benchmark: estimates and models on 1,000,000 synthetic responses.

500 agencies x 3 channels = 1,500 strata (each row its own PSU, fpc from frame counts).
Prints wall time (best of several runs where noted: the machine may be shared) and peak
traced memory (tracemalloc: numpy and pandas allocations) of

1. per-agency mean + proportion with Taylor intervals (publication default: Satterthwaite
   df, Korn-Graubard);
2. the same with a 200-replicate Rao-Wu bootstrap (building the replicates, then estimating);
3. raking on two margins (channel, province), then estimating with calibration residuals;
4. design-based regression (svyglm): linear and logistic, Taylor and on the bootstrap design;
5. key drivers per agency (relative weights, bootstrap intervals);
6. Fay-Herriot small-area estimates for the agency x province cells (REML, Prasad-Rao MSE,
   and a 200-replicate parametric bootstrap MSE);

and, when the optional ``svy`` package is installed, its time on task 1, side by side.

    .venv/bin/python bench/estimate.py [--rows 1000000] [--replicates 200] [--skip-models]
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
from analysis.drivers import key_drivers
from analysis.regression import regress
from analysis.small_areas import small_area_estimates

DRIVERS = ["score_time", "score_courtesy", "score_outcome"]


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
    # driver scores (0-100) that the overall index depends on, unequally and with noise
    for name, loading in zip(DRIVERS, (0.5, 0.2, 0.8), strict=True):
        driver = quality + loading * (index - quality)
        frame[name] = np.clip(driver + rng.normal(0, 15, rows), 0, 100).round()
    # every stratum needs two responses for a variance: drop strata with one
    keep = responses[stratum] >= 2
    return frame[keep].reset_index(drop=True)


PEAK = [0]  # the highest traced memory of any step (measure resets tracemalloc's peak)


def measure(label: str, work: Callable[[], Any], repeat: int = 1) -> Any:
    """Run ``work`` ``repeat`` times; print the best wall time, the CPU time of that run
    (user + system, all threads: on a shared machine wall time overstates the cost) and
    the peak traced memory."""
    best, best_cpu = float("inf"), float("inf")
    peak = 0
    for _ in range(repeat):
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        cpu = time.process_time()
        start = time.perf_counter()
        result = work()
        wall = time.perf_counter() - start
        if wall < best:
            best, best_cpu = wall, time.process_time() - cpu
        top = tracemalloc.get_traced_memory()[1]
        peak = max(peak, top - before)
        PEAK[0] = max(PEAK[0], top)
    runs = f"best of {repeat}" if repeat > 1 else "1 run"
    print(
        f"{label:<52s} {best:7.3f} s wall {best_cpu:7.3f} s cpu ({runs:9s})"
        f"  peak +{peak / 2**20:7.1f} MiB"
    )
    return result


def per_agency(design: SurveyDesign) -> tuple[pd.DataFrame, pd.DataFrame]:
    return design.mean("index", by="agency"), design.proportion("satisfied", by="agency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=500)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--skip-models", action="store_true", help="only tasks 1-3")
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
    if not args.skip_models:
        models(frame, design, replicated, args.replicates)
    peak = max(PEAK[0], tracemalloc.get_traced_memory()[1]) - base
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak traced memory over all steps: {peak / 2**20:.0f} MiB; max RSS {rss:.0f} MiB")
    side_by_side(frame)


def models(
    frame: pd.DataFrame, design: SurveyDesign, replicated: SurveyDesign, replicates: int
) -> None:
    """Tasks 4-6: regression, key drivers, Fay-Herriot on the same responses."""
    linear = "index ~ " + " + ".join(DRIVERS)
    measure("regression: linear, Taylor (svyglm)", lambda: regress(design, linear))
    measure(
        "regression: logistic, Taylor",
        lambda: regress(design, "satisfied ~ " + " + ".join(DRIVERS), family="binomial"),
    )
    measure(
        "regression: linear, per agency (500 domains), Taylor",
        lambda: regress(design, linear, by="agency"),
    )
    measure(
        f"regression: linear, {replicates} bootstrap refits", lambda: regress(replicated, linear)
    )
    measure(
        f"key drivers per agency ({replicates} replicates)",
        lambda: key_drivers(replicated, "index", DRIVERS, by="agency"),
    )
    cells = measure(
        "Fay-Herriot: agency x province cells, REML + MSE",
        lambda: small_area_estimates(design, "index", ["agency", "province"], parent="agency"),
    )
    measure(
        f"Fay-Herriot: the same, {replicates}-replicate bootstrap MSE",
        lambda: small_area_estimates(
            design,
            "index",
            ["agency", "province"],
            parent="agency",
            bootstrap=replicates,
            seed=1,
        ),
    )
    table = cells.table
    print(
        f"  {len(table):,} cells, {int(table['model_based'].sum()):,} model-based; "
        f"median n {table['n'].median():.0f}"
    )


def side_by_side(frame: pd.DataFrame) -> None:
    """svy's time on task 1 (per-agency mean + proportion, Taylor), when it is installed."""
    try:
        import svy  # optional peer, not a dependency
    except ImportError:
        print("svy: not installed (optional); no side-by-side figure")
        return
    import polars as pl  # svy works on polars frames

    columns = ["agency", "stratum", "w", "N_h", "index", "satisfied"]
    data = pl.from_pandas(frame[columns])
    version = getattr(svy, "__version__", "?")

    def run() -> Any:
        design = svy.Design(stratum="stratum", wgt="w", pop_size="N_h")
        sample = svy.Sample(data=data, design=design)
        mean = sample.estimation.mean(y="index", by="agency")
        sample.estimation.prop(y="satisfied", by="agency", ci_method="korn-graubard")
        return mean

    cpu = time.process_time()
    start = time.perf_counter()
    try:
        mean = run()
    except Exception as error:  # report, do not fail: the peer's API is not ours
        print(f"svy {version}: failed on the task ({type(error).__name__}: {error})")
        return
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"svy {version}: per-agency mean + proportion, Taylor (design included) "
        f"{seconds:.3f} s wall {cpu:.3f} s cpu"
    )
    ours = SurveyDesign(frame, weights="w", strata="stratum", fpc="N_h").mean("index", by="agency")
    theirs = getattr(mean, "to_polars", None)
    if theirs is not None:
        print(f"  svy's first rows, to compare: {theirs().head(2).to_dicts()}")
    print(f"  ours: {ours[['agency', 'estimate', 'se']].head(2).to_dict('records')}")


if __name__ == "__main__":
    main()
