"""From expected volumes, response rates and SDs per stratum to a sampling proposal, and back.

Statistics staff state a target ("a 95% margin of error of at most 3 points on the 0-100
index for every agency each quarter"); :func:`propose` finds how many completes each stratum
needs, turns them into invitation rates through the expected response rates, and reports what
the plan delivers for every agency, service, channel and province with its SMS cost.
:func:`evaluate` does the same for rates staff have edited, and :func:`simulate` checks a plan
by drawing synthetic periods. Everything is pure (tables in, tables out) and vectorised over
strata and domains; the formulas are those of :mod:`analysis.samplesize`.

Inputs, one row per stratum (``STRATUM_COLUMNS``): ``stratum`` (a unique name), its domains
``agency``, ``service``, ``channel`` and ``province`` (``""`` when the plan's strata do not
split by province: such strata belong to no province domain), ``volume`` (expected eligible
transactions per period, > 0), ``response_rate`` (completes per invitation, in (0, 1]),
``sd`` (the item's standard deviation on the 0-100 scale; for proportions it is implied by
``mean``), ``mean`` (the expected index, or the expected percentage for proportions; needed for
CV targets, proportions and simulation), ``deff`` (design effect, default 1),
``parts_per_invitation`` (SMS parts an invitation costs on average, reminders and SMS dialogue
included), ``cost_per_part`` and ``cost_per_invitation`` (a fixed cost per invitation,
default 0). Costs are in whatever currency staff use, per period.

How a proposal is made (``propose`` without ``total``/``budget``):

1. The cost of one complete in stratum h is ``c_h = (cost_per_invitation + parts_per_invitation
   * cost_per_part) / response_rate``. Its capacity is ``volume * response_rate`` (everyone
   invited: rate 1).
2. For each ``by`` dimension on its own, each of its domains gets the completes that meet its
   assured target (below) when split among its strata by the ``within`` rule (``"optimal"``:
   ``n_h ∝ N_h S_h sqrt(deff_h) / sqrt(c_h)``, the cheapest split for a given variance,
   Cochran 1977 section 5.5; ``"neyman"``, ``"proportional"``, ``"equal"``), from
   :func:`~analysis.samplesize.stratified_completes`, at least ``min_completes``, and
   re-sharing what a capacity cap frees among the domain's other strata by the same rule (so
   the domain still gets its total). A domain that cannot reach its target invites everyone.
3. Each stratum takes the largest of these per-dimension allocations, and at least
   ``min_stratum_completes`` (default 5, or everyone): a stratum with fewer than two
   respondents cannot be estimated and is folded away in that period.
4. A last check scales up the uncapped strata of any target domain still short of its target
   or minimum (a stratum in several such domains takes the largest factor). With one ``by``
   dimension this is the least-cost plan; with several it guarantees every target, not the
   least cost for all at once (a convex programme we do not solve).
5. Rates are ``completes / (volume * response_rate)``, at most 1 by construction.

Assurance. Designing for the target exactly meets it in only about half of the periods: the
number of respondents under Poisson sampling and the sample variances vary. The estimated
variance of a domain's mean, ``v = sum_h v_h``, is treated as log-normal with

- mean ``sum_h W_h^2 S_h^2 (E[1/r_h] - 1/N_h)``, ``r_h ~ Poisson(n_h)`` given ``r_h >= 2``,
  divided by ``(1 - F)^2``, ``F = sum_h P(r_h < 2) W_h`` the share of the domain's volume
  expected to be folded away (its weight moves to the other strata);
- relative variance ``sum_h relvar_h E[v_h]^2 / E[v]^2`` with ``relvar_h`` that of
  ``s_h^2 / r_h``: given ``r``, ``var(s^2)/S^4 = (kappa_h - 1)/r + 2/(r (r - 1))``
  (``kappa_h`` the kurtosis of the answers), summed exactly over the Poisson distribution of
  ``r`` for ``n_h < 400`` (about ``kappa_h / n_h`` above). For CV targets the estimated
  mean's variation adds ``4 V / Ybar^2`` to the log-variance.

The *assured* margin is the margin at the ``assurance`` quantile of that distribution; a
domain is planned so that its assured margin (or CV) is at most the target, and then meets
the target in a share ``assurance`` of periods. :func:`simulate` checks this. Kurtosis:
Bernoulli for proportions; for means, the beta distribution on 0-100 with the stratum's mean
and SD (3, the normal's, when no mean is given).

With ``total`` (completes) or ``budget`` (cost per period) the total is fixed instead: it is
shared among the domains of the first ``by`` dimension by the ``across`` rule (default
Bankier's power allocation with exponent ``q``, domain sizes ``N_d`` and pooled
within-domain SDs, see :func:`~analysis.samplesize.power_allocation`), then within each
domain by ``within``; the report says which domains that makes publishable.

A domain is *publishable* under a plan when it is a target domain, its expected completes
reach ``min_completes``, its assured margin (CV) is within the target, and at most
``MAX_FOLDED_SHARE`` (10%) of its transactions are in strata expected to have fewer than two
respondents (strata that small, even when everyone is invited, call for coarser strata).

Simulation (:func:`simulate`). Each period draws every stratum's transactions as
Poisson(volume), its sample size as Binomial(transactions, rate) (Poisson sampling: the number
of units whose uniform falls under the rate), respondents as Binomial(sampled, response_rate),
and each respondent's answer from the beta distribution on 0-100 with the stratum's mean and
SD (Bernoulli(mean/100) * 100 for proportions). The domain mean is the stratified estimator
with weights ``N_h / respondents_h``; its variance ``sum W_h^2 deff_h (1 - r_h/N_h) s_h^2 /
r_h`` (the design effect is applied as in planning: the simulation checks the randomness of
volumes, samples, response and answers, not the design effect itself). A stratum with fewer
than two respondents in a period is folded into its domain for that period (the domain's
other strata are weighted up to the domain's total), as collapsing strata would do; the
report counts how often that happened. This is the estimator
:class:`analysis.SurveyDesign` computes for ``weights=N_h/r_h, strata=stratum, fpc=N_h``
(the tests check one period against it); it is computed here directly so that hundreds of
periods take a second.

References: Cochran (1977) Sampling Techniques, 3rd ed., ch. 4-5; Lohr (2022) Sampling: Design
and Analysis, 3rd ed., ch. 2-3; Bankier (1988) The American Statistician 42(3), 174-177.
"""

from __future__ import annotations

from analysis.planning.allocation import propose
from analysis.planning.evaluation import evaluate
from analysis.planning.simulation import SimulationResult, simulate, synthetic_responses
from analysis.planning.targets import DIMENSIONS, STRATUM_COLUMNS, Proposal, Target

__all__ = [
    "DIMENSIONS",
    "STRATUM_COLUMNS",
    "Proposal",
    "SimulationResult",
    "Target",
    "evaluate",
    "propose",
    "simulate",
    "synthetic_responses",
]
