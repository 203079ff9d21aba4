"""Post-stratification to known population cell counts (R ``postStratify``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis._taylor import GregStep
from analysis.errors import WeightingError
from analysis.weighting.cells import cell_codes, cell_totals, columns_of, indicator, targets_for

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


def scale_to_cells(weights: np.ndarray, codes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Scale each column of ``weights`` so its cell totals equal ``targets``."""
    totals = cell_totals(codes, targets.shape[0], weights)
    if (totals <= 0).any():
        raise WeightingError(
            "poststratify: a cell has zero total weight in the sample (or a replicate); "
            "collapse it with a neighbouring cell"
        )
    return weights * (targets[:, None] / totals)[codes]


def poststratify(
    design: SurveyDesign,
    column: str | Sequence[str],
    population: Mapping[Any, float] | pd.Series | pd.DataFrame,
) -> SurveyDesign:
    """Post-stratify: weights in each cell of ``column`` sum to its population count.

    ``population`` maps cell values (tuples when ``column`` is a list) to counts; a pandas
    Series, or a DataFrame with the columns and a ``Freq`` column as in R, work too. Every
    sampled cell needs a count and every counted cell needs sampled rows. The Taylor
    variance uses the residuals from the design-weighted cell means.
    """
    columns = columns_of(column)
    codes, labels = cell_codes(design.data, columns, "poststratify")
    targets = targets_for(labels, population, columns, "poststratify")

    def replay(other: SurveyDesign) -> SurveyDesign:
        return poststratify(other, column, population)

    new = scale_to_cells(design._weights[:, None], codes, targets)[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = scale_to_cells(scheme.weights(), codes, targets)
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    step = GregStep.fit(indicator(codes, len(labels)), design._weights, new)
    return design._derive(weights=new, step=step, replay=replay)
