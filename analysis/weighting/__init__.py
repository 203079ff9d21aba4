"""Weighting steps: each takes a design and returns a new one.

* :func:`~analysis.weighting.nonresponse.adjust_nonresponse` -- weighting-class adjustment;
* :func:`~analysis.weighting.poststratify.poststratify` -- to known cell counts;
* :func:`~analysis.weighting.rake.rake` -- iterative proportional fitting to margins;
* :func:`~analysis.weighting.calibrate.calibrate` -- calibration to totals by linear
  (GREG), raking or logit distance, bounded or not;
* :func:`~analysis.weighting.trim.trim` -- cap weights and redistribute the excess (R's
  ``trimWeights`` rule by default).

On a Taylor design each step (but trimming) records a
:class:`~analysis._taylor.CalibrationStep` so the variance uses calibration residuals; on
a replicate design the step is redone on every replicate's weights.
"""

from analysis.weighting.calibrate import calibrate
from analysis.weighting.nonresponse import adjust_nonresponse
from analysis.weighting.poststratify import poststratify
from analysis.weighting.rake import rake
from analysis.weighting.trim import trim

__all__ = ["adjust_nonresponse", "calibrate", "poststratify", "rake", "trim"]
