"""Nonresponse adjustment within weighting classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from analysis._taylor import GregStep
from analysis.errors import UnknownColumnError, WeightingError
from analysis.weighting.cells import cell_codes, cell_totals, columns_of, indicator

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


def _responded(design: SurveyDesign, column: str) -> np.ndarray:
    if column not in design.data.columns:
        raise UnknownColumnError(f"adjust_nonresponse: column {column!r} is not in the data")
    values = design.data[column]
    if values.isna().any():
        raise WeightingError(
            f"adjust_nonresponse: column {column!r} must be 0/1 or True/False on every row, "
            f"got {int(values.isna().sum())} missing"
        )
    numeric = values.to_numpy(dtype=float)
    if not np.isin(numeric, (0.0, 1.0)).all():
        raise WeightingError(
            f"adjust_nonresponse: column {column!r} must be 0/1 or True/False, got "
            f"{sorted(set(numeric[~np.isin(numeric, (0.0, 1.0))].tolist()))[:5]}"
        )
    return numeric


def adjust_weights(
    weights: np.ndarray, responded: np.ndarray, codes: np.ndarray, n_cells: int
) -> np.ndarray:
    """Respondents' weights times (class total / class respondents' total); others 0."""
    everyone = cell_totals(codes, n_cells, weights)
    respondents = cell_totals(codes, n_cells, weights * responded[:, None])
    if ((respondents <= 0) & (everyone > 0)).any():
        raise WeightingError(
            "adjust_nonresponse: a weighting class (in the sample or a replicate) has no "
            "respondents; merge it with a neighbouring class"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(respondents > 0, everyone / respondents, 0.0)
    return weights * responded[:, None] * factor[codes]


def adjust_nonresponse(
    design: SurveyDesign, responded: str, classes: str | Sequence[str]
) -> SurveyDesign:
    """Spread nonrespondents' weight over respondents of the same weighting class.

    ``responded`` is a 0/1 (or boolean) column; nonrespondents keep their rows with weight
    0, so the design's strata and PSUs are unchanged. The Taylor variance treats the class
    totals as estimated from the whole sample (the nonrespondents' part of the variance is
    kept), i.e. the linearised score is ``r g (z - zbar_c) + zbar_c``.
    """
    r = _responded(design, responded)
    codes, labels = cell_codes(design.data, columns_of(classes), "adjust_nonresponse")

    def replay(other: SurveyDesign) -> SurveyDesign:
        return adjust_nonresponse(other, responded, classes)

    new = adjust_weights(design._weights[:, None], r, codes, len(labels))[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = adjust_weights(scheme.weights(), r, codes, len(labels))
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    step = GregStep.fit(
        indicator(codes, len(labels)), design._weights * r, new, estimated_by=design._weights
    )
    return design._derive(weights=new, step=step, replay=replay)
