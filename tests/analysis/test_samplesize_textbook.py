"""Sample-size formulas against a worked example printed in a textbook (issue 6, Done when).

Lohr, S. L. (2010). *Sampling: Design and Analysis*, 2nd ed., Brooks/Cole, section 2.6
"Sample Size Estimation" (the same example is in the 3rd ed., CRC 2022, chapter 2): to
estimate the proportion of the N = 1251 recipes of a cookbook that use no animal products
with a 95% margin of error of 0.03, and no prior idea of p (take p = 1/2),
n0 = 1.96^2 (1/2)(1/2) / 0.03^2 ~ 1067, which is large beside N, so
n = n0 / (1 + n0 / N) ~ 576. Lohr's fpc form is the mean formula with S^2 = p(1 - p);
Cochran's (1977, section 4.4) `n0 / (1 + (n0 - 1) / N)` gives the same 576 after rounding.
The formula-level checks (Cochran's 384, Neyman and optimal allocation by hand) are in
test_samplesize.py.
"""

from __future__ import annotations

import pytest

from analysis.samplesize import completes_for_margin, completes_for_proportion, margin_of_error


def test_lohr_cookbook_recipes_example() -> None:
    n0 = completes_for_margin(0.03, 0.5)
    assert round(float(n0)) == 1067
    lohr = completes_for_margin(0.03, 0.5, population=1251)
    assert round(float(lohr)) == 576
    cochran = completes_for_proportion(0.03, 0.5, population=1251)
    assert round(float(cochran)) == 576
    assert float(cochran) == pytest.approx(1067.0720 / (1 + 1066.0720 / 1251), rel=1e-6)
    # and back: 576 recipes give (about) the 0.03 asked for
    assert float(margin_of_error(576, 0.5, population=1251)) == pytest.approx(0.03, rel=1e-3)
