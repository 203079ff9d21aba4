"""The survey design: data, weights, strata, PSUs, fpc, replicate weights (immutable).

Modelled on R's ``svydesign``/``svrepdesign``: a design is built once, estimators read it,
and every weighting step returns a *new* design whose variance accounts for the step.
Estimators live in :mod:`analysis.estimators`, :mod:`analysis.quantile`,
:mod:`analysis.index`; weighting in :mod:`analysis.weighting`; the variance engines in
:mod:`analysis._taylor` and :mod:`analysis._replicate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from analysis import _replicate, _taylor
from analysis._stages import LONELY_PSU_RULES, Stage, build_stages
from analysis.domains import Domains, build_domains, normalise_by
from analysis.errors import DesignError, MethodError, UnknownColumnError, WeightError

if TYPE_CHECKING:
    from analysis._replicate import ReplicateScheme
    from analysis._taylor import CalibrationStep
    from analysis.regression import Family


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _require_columns(data: pd.DataFrame, role: str, columns: list[str]) -> None:
    for column in columns:
        if column not in data.columns:
            raise UnknownColumnError(
                f"{role}: column {column!r} is not in the data "
                f"(columns: {', '.join(map(str, list(data.columns)[:20]))})"
            )


def _check_weights(values: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        raise WeightError(
            f"weights {name!r}: expected a finite number on every row, "
            f"got {int(bad.sum())} missing or infinite (first at row {int(np.argmax(bad))})"
        )
    if (values < 0).any():
        first = int(np.argmax(values < 0))
        raise WeightError(
            f"weights {name!r}: expected non-negative weights, got {values[first]:g} "
            f"at row {first} ({int((values < 0).sum())} negative)"
        )
    return values


class SurveyDesign:
    """A complex survey design (immutable), as R ``survey``'s ``svydesign``/``svrepdesign``.

    Taylor-linearisation designs::

        SurveyDesign(df, weights="w", strata="stratum", psu=None, fpc="N_h")
        SurveyDesign(df, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"])  # two stages

    ``psu`` is one column or a list (one per stage; ``None`` means every row is its own
    PSU); PSUs are nested in strata and later-stage units in earlier ones. ``fpc`` is one
    column per stage holding population sizes (all >= 1) or sampling fractions (all <= 1);
    stages after one without an fpc add nothing (ultimate-cluster variance). Omitted
    ``weights`` come from the fpcs (``prod N_s / n_s``). ``lonely_psu`` says what a stratum
    with one PSU does: ``"fail"`` (default: raise :class:`~analysis.errors.LonelyPSUError`),
    ``"certainty"`` or its alias ``"remove"`` (contributes nothing), ``"adjust"`` (centred on
    the mean of the stage's PSU totals instead of its stratum mean) or ``"average"`` (the
    variance is scaled by strata / strata-with-variance). For a domain, "adjust" and
    "average" count the strata the domain has rows in, as R's ``svyby``.

    Replicate-weight designs::

        SurveyDesign(df, weights="finalwgt", repweights="brr_[0-9]+", rep_method="brr")

    ``repweights`` is a list of columns or a regular expression matched in full against
    column names; ``rep_method`` is ``"brr"``, ``"fay"`` (with ``fay_rho``), ``"jk1"``,
    ``"jkn"`` (needs ``rep_rscales``) or ``"bootstrap"``; ``rep_scale``/``rep_rscales``
    override R's defaults; ``mse=True`` centres replicate deviations on the full-sample
    estimate, ``False`` on the replicates' mean. Columns hold full replicate weights
    (R's ``combined.weights=TRUE``) unless ``combined_weights=False``.

    Public attributes (a contract other modules rely on): :attr:`data`, :attr:`weights`,
    :attr:`is_replicate`, :attr:`replicate_weights`, :meth:`replicate_weight_blocks`,
    :attr:`degrees_of_freedom`, :meth:`total_covariance`, :meth:`domain_total_covariance`,
    :meth:`replicate_variance`.
    """

    __slots__ = (
        "_cache",
        "_data",
        "_frozen",
        "_history",
        "_lonely_psu",
        "_sampling_weights",
        "_scheme",
        "_spec",
        "_stages",
        "_steps",
        "_weights",
    )
    # Declared for the type checker only (no values: the slots above hold them, set by _build).
    _cache: dict[Any, Any]
    _data: pd.DataFrame
    _frozen: bool
    _history: tuple[Callable[[SurveyDesign], SurveyDesign], ...]
    _lonely_psu: str
    _sampling_weights: np.ndarray
    _scheme: ReplicateScheme | None
    _spec: dict[str, Any]
    _stages: list[Stage]
    _steps: tuple[CalibrationStep, ...]
    _weights: np.ndarray

    def __init__(
        self,
        data: pd.DataFrame,
        weights: str | None = None,
        strata: str | None = None,
        psu: str | Sequence[str | None] | None = None,
        fpc: str | Sequence[str] | None = None,
        *,
        lonely_psu: str = "fail",
        repweights: str | Sequence[str] | None = None,
        rep_method: str | None = None,
        fay_rho: float = 0.0,
        rep_scale: float | None = None,
        rep_rscales: float | Sequence[float] | np.ndarray | None = None,
        mse: bool = False,
        combined_weights: bool = True,
    ) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DesignError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
        if lonely_psu not in LONELY_PSU_RULES:
            raise MethodError(f"lonely_psu: expected one of {LONELY_PSU_RULES}, got {lonely_psu!r}")
        data = data.reset_index(drop=True)
        psu_list: list[str | None] = (
            [None] if psu is None else ([psu] if isinstance(psu, str) else list(psu))
        )
        fpc_list = _as_list(fpc)
        _require_columns(data, "weights", _as_list(weights))
        _require_columns(data, "strata", _as_list(strata))
        _require_columns(data, "psu", [p for p in psu_list if p is not None])
        _require_columns(data, "fpc", fpc_list)
        if None in psu_list[1:]:
            raise DesignError("psu: only the first stage may be None (each row its own PSU)")
        if fpc_list and len(fpc_list) != len(psu_list):
            raise DesignError(
                f"fpc: expected one column per stage ({len(psu_list)}), got {len(fpc_list)}"
            )
        if len(data) == 0:
            raise DesignError("data: expected at least one row, got an empty table")
        scheme = None
        if repweights is not None:
            if strata is not None or psu is not None or fpc is not None:
                raise DesignError(
                    "repweights: a replicate-weight design carries its design in the "
                    "replicate weights; do not also pass strata, psu or fpc"
                )
            if weights is None:
                raise WeightError(
                    "weights: a replicate-weight design needs the full-sample weights"
                )
            if rep_method is None:
                raise MethodError(
                    f"rep_method: expected one of {_replicate.REPLICATE_METHODS}, got None"
                )
            columns = self._replicate_columns(data, repweights)
            stages, _ = build_stages(data, None, [], [], "certainty")
            w = _check_weights(data[weights].to_numpy(dtype=float), weights)
            matrix = data[columns].to_numpy(dtype=float)
            _check_weights(matrix.ravel(), "repweights")
            scheme = _replicate.from_columns(
                matrix,
                w,
                rep_method,
                fay_rho=fay_rho,
                scale=rep_scale,
                rscales=None if rep_rscales is None else np.asarray(rep_rscales, dtype=float),
                mse=mse,
                combined=combined_weights,
            )
        else:
            if rep_method is not None:
                raise DesignError("rep_method: given without repweights")
            stages, implied = build_stages(data, strata, psu_list, fpc_list, lonely_psu)
            if weights is not None:
                w = _check_weights(_numeric_column(data, weights), weights)
            elif implied is not None:
                w = implied
            else:
                raise WeightError(
                    "weights: expected a weights column, or fpc columns to derive them from; "
                    "got neither"
                )
        spec = {"weights": weights, "strata": strata, "psu": psu, "fpc": fpc}
        self._build(data, w, w, stages, (), scheme, lonely_psu, spec, ())

    @staticmethod
    def _replicate_columns(data: pd.DataFrame, repweights: str | Sequence[str]) -> list[str]:
        if isinstance(repweights, str):
            pattern = re.compile(repweights)
            columns = [c for c in data.columns if pattern.fullmatch(str(c))]
            if not columns:
                raise UnknownColumnError(
                    f"repweights: no column matches the pattern {repweights!r}"
                )
            return columns
        columns = list(repweights)
        _require_columns(data, "repweights", columns)
        return columns

    def _build(
        self,
        data: pd.DataFrame,
        weights: np.ndarray,
        sampling_weights: np.ndarray,
        stages: list[Stage],
        steps: tuple[CalibrationStep, ...],
        scheme: ReplicateScheme | None,
        lonely_psu: str,
        spec: dict,
        history: tuple[Callable[[SurveyDesign], SurveyDesign], ...],
    ) -> None:
        setter = object.__setattr__
        setter(self, "_data", data)
        setter(self, "_weights", weights)
        setter(self, "_sampling_weights", sampling_weights)
        setter(self, "_stages", stages)
        setter(self, "_steps", steps)
        setter(self, "_scheme", scheme)
        setter(self, "_lonely_psu", lonely_psu)
        setter(self, "_spec", spec)
        setter(self, "_history", history)
        setter(self, "_cache", {})
        setter(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SurveyDesign is immutable; cannot set {name!r}")

    def _derive(
        self,
        *,
        weights: np.ndarray,
        replay: Callable[[SurveyDesign], SurveyDesign],
        step: CalibrationStep | None = None,
        scheme: ReplicateScheme | None = None,
    ) -> SurveyDesign:
        """A new design with adjusted weights.

        ``step`` records the adjustment for the Taylor variance; ``replay`` redoes it on
        another design (used by :meth:`replicate` to reweight every replicate).
        """
        new = object.__new__(SurveyDesign)
        steps = self._steps + ((step,) if step is not None else ())
        new._build(
            self._data,
            weights,
            self._sampling_weights,
            self._stages,
            steps,
            scheme if scheme is not None else self._scheme,
            self._lonely_psu,
            self._spec,
            (*self._history, replay),
        )
        return new

    # ---- the public contract -------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """The data (a DataFrame with a fresh 0..n-1 index)."""
        return self._data

    @property
    def weights(self) -> np.ndarray:
        """The final weights (after every weighting step), as a read-only array."""
        view = self._weights.view()
        view.flags.writeable = False
        return view

    @property
    def is_replicate(self) -> bool:
        """True for replicate-weight designs (from a file or :meth:`replicate`)."""
        return self._scheme is not None

    @property
    def replicate_weights(self) -> np.ndarray | None:
        """The ``(n, R)`` replicate weights, or None for a Taylor design.

        Built on demand from the factored form (``8 n R`` bytes): estimators never need it.
        """
        return None if self._scheme is None else self._scheme.weights()

    def replicate_weight_blocks(
        self, size: int = 32, rows: np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        """The replicate weights ``size`` columns at a time (of ``rows`` only, if given).

        Models that refit every replicate use this instead of :attr:`replicate_weights`:
        ``8 n size`` bytes at a time instead of ``8 n R`` (1.6 GB for a million rows and
        200 replicates). Raises :class:`~analysis.errors.DesignError` on a Taylor design.
        """
        if self._scheme is None:
            raise DesignError("replicate_weight_blocks: the design has no replicate weights")
        if size < 1:
            raise DesignError(f"size: expected a positive number of columns, got {size!r}")
        scheme = self._scheme
        return (
            scheme.weights(slice(start, start + size), rows)
            for start in range(0, scheme.replicates, size)
        )

    @property
    def degrees_of_freedom(self) -> int:
        """R's ``degf``: PSUs minus strata (rows with non-zero weight), or rank - 1 of the
        replicate weights for replicate designs (estimators use each domain's own)."""
        if self._scheme is not None:
            return self._scheme.df
        if "degf" not in self._cache:  # counts of codes, not np.unique: 1M rows in ms
            stage = self._stages[0]
            used = np.bincount(stage.unit[self._weights != 0], minlength=stage.n_unit) > 0
            strata = np.bincount(stage.stratum[used], minlength=stage.n_strata) > 0
            self._cache["degf"] = int(used.sum() - strata.sum())
        return self._cache["degf"]

    @property
    def lonely_psu(self) -> str:
        """The lonely-PSU rule the design was built with."""
        return self._lonely_psu

    def total_covariance(self, scores: np.ndarray) -> np.ndarray:
        """The ``k x k`` Taylor covariance of the weighted totals ``sum_i w_i scores[i, :]``.

        ``scores`` is ``(n, k)`` (or ``(n,)``) and *unweighted*: the design applies its
        weights. Honours strata, PSUs at every stage, fpc, the lonely-PSU rule and the
        weighting steps (scores are replaced by calibration residuals, as R does). On a
        replicate design the covariance comes from the replicate totals instead.
        """
        scores = np.asarray(scores, dtype=float)
        if scores.shape[0] != len(self._data):
            raise DesignError(f"scores: expected {len(self._data)} rows, got {scores.shape[0]}")
        if self._scheme is not None:
            matrix = scores if scores.ndim == 2 else scores[:, None]
            reps = self._scheme.domain_totals(matrix, np.zeros(len(self._data), np.int64), 1)
            full = (self._weights[:, None] * matrix).sum(axis=0)
            return self._scheme.covariance(full, reps[0].T)
        return _taylor.total_covariance(self._stages, self._weights, scores, self._steps)

    def domain_total_covariance(
        self, scores: np.ndarray, domain: np.ndarray, n_domain: int
    ) -> np.ndarray:
        """``(n_domain, k, k)``: for every domain at once, the Taylor covariance of its
        weighted totals of the ``scores`` columns (each row counts for its own domain).

        ``domain`` holds each row's domain code, ``0 .. n_domain - 1`` (negative: none).
        Domain ``d``'s matrix equals :meth:`total_covariance` of the scores zeroed outside
        ``d`` (except that under ``lonely_psu="average"`` or ``"adjust"`` an uncalibrated
        domain counts only its own strata, as R's ``svyby``), but all domains take
        ``k (k + 1) / 2`` passes over the data (variances of sums of column pairs), not one
        pass per domain: per-agency regressions use it.
        Taylor designs only (a replicate design refits its replicates instead).
        """
        if self._scheme is not None:
            raise DesignError("domain_total_covariance: a replicate design has no Taylor form")
        scores = np.asarray(scores, dtype=float)
        scores = scores[:, None] if scores.ndim == 1 else scores
        domain = np.asarray(domain)
        if scores.shape[0] != len(self._data) or domain.shape != (len(self._data),):
            raise DesignError(
                f"scores and domain: expected {len(self._data)} rows, got {scores.shape[0]} "
                f"and {domain.shape[0]}"
            )
        code = np.where((domain < 0) | (domain >= n_domain), n_domain, domain).astype(np.int64)
        bins = n_domain + 1
        layouts = [_taylor.stage_layout(stage, code, bins) for stage in self._stages]
        cache = self._cache.setdefault("calibration", {})
        counted = code < n_domain

        def variance(values: np.ndarray) -> np.ndarray:
            result = _taylor.domain_variance(
                self._stages,
                self._weights,
                values * counted,
                code,
                bins,
                self._steps,
                layouts,
                cache,
            )
            return result[0][:n_domain]

        k = scores.shape[1]
        cov = np.empty((n_domain, k, k))
        diagonal = [variance(scores[:, j]) for j in range(k)]
        for j in range(k):
            cov[:, j, j] = diagonal[j]
            for m in range(j):
                both = variance(scores[:, j] + scores[:, m])
                cov[:, j, m] = cov[:, m, j] = (both - diagonal[j] - diagonal[m]) / 2
        return cov

    def replicate_variance(self, theta_full: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
        """``k x k`` covariance of an estimate from its replicate values ``(R, k)``.

        Applies ``scale``, ``rscales`` and ``mse`` as R's ``svrVar``.
        """
        if self._scheme is None:
            raise DesignError("replicate_variance: this is a Taylor design; use replicate()")
        return self._scheme.covariance(theta_full, theta_reps)

    # ---- internals shared by estimators ------------------------------------------------
    def _domains(self, by: str | Sequence[str] | None) -> Domains:
        columns = normalise_by(by)
        key = ("domains", columns)
        if key not in self._cache:
            self._cache[key] = build_domains(self._data, columns)
        return self._cache[key]

    def _layouts(self, domains: Domains) -> list[_taylor.StageLayout]:
        """Cached per-stage layouts (entries and cells) for these domains."""
        key = ("layouts", domains.columns)
        if key not in self._cache:
            self._cache[key] = [
                _taylor.stage_layout(stage, domains.code, domains.bins) for stage in self._stages
            ]
        return self._cache[key]

    def _replicate_pairs(self, domains: Domains) -> tuple | None:
        scheme = self._scheme
        if scheme is None or scheme.unit is None:
            return None
        key = ("replicate-pairs", domains.columns)
        if key not in self._cache:
            self._cache[key] = _replicate.unit_domain_pairs(scheme.unit, domains.code, domains.bins)
        return self._cache[key]

    def _replicate_domain_df(self, domains: Domains, counted: np.ndarray) -> np.ndarray:
        """R's ``degf(subset(d, <domain>))`` on a replicate design, per domain: the rank of
        the domain's replicate weights minus 1 (cached when every row counts)."""
        scheme = self._scheme
        if scheme is None:
            raise DesignError("replicate domain df: this is a Taylor design")
        counted = counted & (self._weights != 0)
        key = ("replicate-df", domains.columns)
        everything = bool(counted.all())
        if everything and key in self._cache:
            return self._cache[key]
        df = scheme.domain_df(domains.code, domains.n_domain, counted)
        if everything:
            self._cache[key] = df
        return df

    def _numeric(self, column: str, role: str) -> np.ndarray:
        if column not in self._data.columns:
            raise UnknownColumnError(
                f"{role}: column {column!r} is not in the data "
                f"(columns: {', '.join(map(str, list(self._data.columns)[:20]))})"
            )
        series = self._data[column]
        if series.dtype == bool:
            return series.to_numpy(dtype=float)
        try:
            return pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
        except (ValueError, TypeError) as exc:
            from analysis.errors import VariableError

            raise VariableError(
                f"{role}: column {column!r} must be numeric, got values such as "
                f"{series.dropna().astype(str).head(3).tolist()}"
            ) from exc

    # ---- estimators --------------------------------------------------------------------
    def mean(
        self,
        variable: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        *,
        dropna: bool = False,
        level: float = 0.95,
        method: str | None = None,
    ) -> pd.DataFrame:
        """Weighted mean per domain (R ``svymean``/``svyby``).

        See :func:`analysis.estimators.mean`."""
        from analysis.estimators import mean

        return mean(self, variable, by=by, dropna=dropna, level=level, method=method)

    def total(
        self,
        variable: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        *,
        dropna: bool = False,
        level: float = 0.95,
        method: str | None = None,
    ) -> pd.DataFrame:
        """Weighted total per domain (R ``svytotal``); see :func:`analysis.estimators.total`."""
        from analysis.estimators import total

        return total(self, variable, by=by, dropna=dropna, level=level, method=method)

    def ratio(
        self,
        numerator: str,
        denominator: str,
        by: str | Sequence[str] | None = None,
        *,
        dropna: bool = False,
        level: float = 0.95,
        method: str | None = None,
    ) -> pd.DataFrame:
        """Ratio of weighted totals (R ``svyratio``); see :func:`analysis.estimators.ratio`."""
        from analysis.estimators import ratio

        return ratio(self, numerator, denominator, by=by, dropna=dropna, level=level, method=method)

    def proportion(
        self,
        variable: str,
        by: str | Sequence[str] | None = None,
        *,
        method: str | None = None,
        dropna: bool = False,
        level: float = 0.95,
    ) -> pd.DataFrame:
        """Proportion of a 0/1 variable with a CI (R ``svyciprop``); see
        :func:`analysis.estimators.proportion`."""
        from analysis.estimators import proportion

        return proportion(self, variable, by=by, method=method, dropna=dropna, level=level)

    def quantile(
        self,
        variable: str,
        q: float | Sequence[float],
        by: str | Sequence[str] | None = None,
        *,
        dropna: bool = False,
        level: float = 0.95,
        method: str | None = None,
        qrule: str = "math",
    ) -> pd.DataFrame:
        """Quantile(s) with an interval (R ``svyquantile``: ``qrule``, ``interval.type`` as
        ``method``); see :func:`analysis.quantile.quantile`."""
        from analysis.quantile import quantile

        return quantile(
            self, variable, q, by=by, dropna=dropna, level=level, method=method, qrule=qrule
        )

    def index(
        self,
        scores: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        *,
        points: Sequence[float] | None = None,
        level: float = 0.95,
        method: str | None = None,
    ) -> pd.DataFrame:
        """The satisfaction index per domain; see :func:`analysis.index.satisfaction_index`."""
        from analysis.index import satisfaction_index

        return satisfaction_index(self, scores, by=by, points=points, level=level, method=method)

    def regress(
        self, formula: str, family: Family = "gaussian", by: str | Sequence[str] | None = None
    ) -> Any:
        """Design-based regression (R ``svyglm``), implemented in :mod:`analysis.regression`."""
        from analysis.regression import regress

        return regress(self, formula, family=family, by=by)

    # ---- weighting: each returns a new design ------------------------------------------
    def poststratify(
        self,
        column: str | Sequence[str],
        population: Mapping[Any, float] | pd.Series | pd.DataFrame,
    ) -> SurveyDesign:
        """Post-stratify to known cell counts.

        See :func:`analysis.weighting.poststratify.poststratify`."""
        from analysis.weighting.poststratify import poststratify

        return poststratify(self, column, population)

    def rake(
        self, margins: Mapping[str, Mapping[Any, float]], *, max_iter: int = 100, tol: float = 1e-10
    ) -> SurveyDesign:
        """Rake to known margins; see :func:`analysis.weighting.rake.rake`."""
        from analysis.weighting.rake import rake

        return rake(self, margins, max_iter=max_iter, tol=tol)

    def calibrate(
        self,
        totals: Mapping[str, float | Mapping[Any, float]],
        *,
        population: float | None = None,
        calfun: Literal["linear", "raking", "logit"] = "linear",
        bounds: tuple[float, float] | None = None,
        max_iter: int = 50,
        tol: float = 1e-12,
    ) -> SurveyDesign:
        """Calibration to totals (linear/GREG, raking or logit, bounded or not); see
        :func:`analysis.weighting.calibrate.calibrate`."""
        from analysis.weighting.calibrate import calibrate

        return calibrate(
            self,
            totals,
            population=population,
            calfun=calfun,
            bounds=bounds,
            max_iter=max_iter,
            tol=tol,
        )

    def trim(
        self,
        *,
        upper: float | None = None,
        lower: float | None = None,
        strict: bool = False,
        redistribute: Literal["equal", "proportional"] = "equal",
        max_iter: int = 1000,
    ) -> SurveyDesign:
        """Trim weights and redistribute the excess (R ``trimWeights``); see
        :func:`analysis.weighting.trim.trim`."""
        from analysis.weighting.trim import trim

        return trim(
            self,
            upper=upper,
            lower=lower,
            strict=strict,
            redistribute=redistribute,
            max_iter=max_iter,
        )

    def adjust_nonresponse(self, responded: str, classes: str | Sequence[str]) -> SurveyDesign:
        """Weighting-class nonresponse adjustment; see
        :func:`analysis.weighting.nonresponse.adjust_nonresponse`."""
        from analysis.weighting.nonresponse import adjust_nonresponse

        return adjust_nonresponse(self, responded, classes)

    def replicate(
        self, method: str, *, replicates: int = 200, seed: int | None = None, mse: bool = False
    ) -> SurveyDesign:
        """A replicate-weight version of this Taylor design (R ``as.svrepdesign``).

        ``"jk1"`` (unstratified) and ``"jkn"`` delete one PSU per replicate, with R's
        lonely-PSU handling (see :func:`analysis._replicate.jackknife`: an extra replicate
        for "adjust", a rescaling for "average"); ``"bootstrap"`` is the Rao-Wu rescaled
        bootstrap with ``replicates`` replicates from ``seed``. Weighting steps already
        applied are redone in every replicate.
        """
        if self._scheme is not None:
            raise DesignError("replicate: the design already has replicate weights")
        stage = self._stages[0]
        base = self._sampling_weights
        if method in ("jk1", "jkn"):
            scheme = _replicate.jackknife(stage, base, method, self._lonely_psu, mse)
        elif method == "bootstrap":
            if replicates < 2:
                raise DesignError(f"replicates: expected at least 2, got {replicates}")
            scheme = _replicate.bootstrap(stage, base, replicates, seed, self._lonely_psu, mse)
        else:
            raise MethodError(
                f"replicate: method expected one of ('jk1', 'jkn', 'bootstrap'), got {method!r}"
            )
        new = object.__new__(SurveyDesign)
        new._build(
            self._data, base, base, self._stages, (), scheme, self._lonely_psu, self._spec, ()
        )
        for replay in self._history:
            new = replay(new)
        return new

    def __repr__(self) -> str:
        kind = (
            f"replicate ({self._scheme.method}, {self._scheme.replicates} replicates)"
            if self._scheme is not None
            else f"{len(self._stages)}-stage Taylor"
        )
        return f"<SurveyDesign {kind}: {len(self._data)} rows, {len(self._steps)} weighting steps>"


def _numeric_column(data: pd.DataFrame, name: str) -> np.ndarray:
    """A column as floats; WeightError naming the first value that is not a number."""
    values = pd.to_numeric(data[name], errors="coerce")
    bad = values.isna() & data[name].notna()
    if bad.any():
        first = data[name][bad].iloc[0]
        raise WeightError(f"{name}: expected numbers; got {str(first)[:40]!r}")
    return values.to_numpy(dtype=float)
