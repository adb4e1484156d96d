"""Did the change work: an experiment's metrics per variant, compared with the control, honestly.

The database returns per variant and day of first exposure the sufficient statistics of every metric
(`keystep.sql.experiments`); this module:

1. checks the **sample ratio** first (exposed units per variant against the configured weights,
   chi-square, flagged at p < 0.001): a mismatch means the assignment or the tracking is broken and the
   effects below are not to be trusted;
2. compares every treatment with the control on every metric with the experiment's method —
   *sequential* (always-valid confidence sequences: safe to look every day), *frequentist* (a Welch test
   valid only at a planned horizon) or *Bayesian* (chance to win, expected loss) — relative effects with
   delta-method variances, CUPED-adjusted with the metric's own pre-exposure value when that covariate
   varies;
3. corrects the p-values of the secondary and guardrail metrics across metrics and variants (Holm), and
   widens their intervals to match (the primary metric stands alone: it is the one decided on);
4. gives the cumulative effect of the primary metric by day of exposure (for the chart).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

from keystep.analysis.micro_macro import MicroMacroResult, run_micro_macro
from keystep.backends.base import Backend
from keystep.conversions.definitions import Definitions, Kind
from keystep.experiments.definitions import Experiment, Method, Metric, Role
from keystep.query import Query
from keystep.sql.experiments import build_experiment
from keystep.stats.bayesian import compute_bayesian_test
from keystep.stats.cuped import CovariateStats
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.multiple_testing import holm
from keystep.stats.multiplicity import adjusted_confidence_interval
from keystep.stats.sequential import compute_sequential_test
from keystep.stats.srm import SrmResult, compute_srm
from keystep.stats.sufficient import MeanStats, MetricStats, ProportionStats, RatioStats

ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class ArmMetric:
    variant: str
    n: int
    mean: float | None  # the metric per exposed unit (a rate for conversions)


@dataclass(frozen=True, slots=True)
class Comparison:
    variant: str
    effect: float | None  # relative: (treatment − control) / control
    lower: float | None
    upper: float | None
    p_value: float | None  # frequentist and sequential
    adjusted_p: float | None  # Holm across the secondary and guardrail comparisons; the raw p for the primary
    chance_to_win: float | None  # Bayesian
    risk: tuple[float, float] | None  # Bayesian expected loss (choosing control, choosing treatment)
    significant: bool
    cuped: bool  # adjusted with the pre-exposure covariate
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    label: str
    role: Role
    proportion: bool
    arms: tuple[ArmMetric, ...]
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True, slots=True)
class CumulativePoint:
    day: date
    units: int
    effect: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class SurrogatePrediction:
    """A PREDICTION, not a measurement: the primary (macro) metric's relative effect implied by one micro
    metric's measured effect, through how the macro rate differed with and without the micro before the
    experiment. It assumes the change moves the macro only through this micro step."""

    micro: str
    variant: str
    predicted_effect: float | None
    lower: float | None
    upper: float | None
    micro_change: float  # treatment − control share of units that did the micro (absolute)
    macro_rate_with: float  # historical macro rate of units that did the micro
    macro_rate_without: float
    label: str = "prediction (surrogate), not a measured macro effect"


@dataclass(frozen=True, slots=True)
class ExperimentResult:
    experiment: str
    label: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    method: Method
    alpha: float
    units: tuple[int, ...]  # exposed units per variant
    unknown_variant_units: int  # exposures naming no variant of the definition
    srm: SrmResult
    srm_mismatch: bool  # the sample ratio check failed: the effects are not to be trusted
    metrics: tuple[MetricResult, ...]
    cumulative: tuple[tuple[str, tuple[CumulativePoint, ...]], ...]  # per treatment, the primary metric
    start: date | None
    end: date | None
    warnings: tuple[str, ...]
    surrogates: tuple[SurrogatePrediction, ...] = ()


def run_experiment(backend: Backend, definitions: Definitions, key: str, query: Query,
                   *, method: Method | None = None, alpha: float = ALPHA) -> ExperimentResult:
    """The analysis, and — when the primary metric is a macro conversion and micro conversions are among
    the metrics — surrogate predictions of the macro effect from the micro effects, the micro→macro
    relation measured on the units seen before the first exposure."""
    experiment = definitions.experiment(key)
    rows = list(backend.execute(build_experiment(experiment, query)))
    result = compute_experiment(experiment, rows, query, method=method or experiment.method, alpha=alpha)
    primary = experiment.primary
    micros = [m for m in experiment.metrics if m.proportion and m.goal.kind is Kind.MICRO]
    days = [r["day"] for r in rows if r["day"] is not None]
    if primary is None or not primary.proportion or primary.goal.kind is not Kind.MACRO or not micros or not days:
        return result
    before = query.with_(start=None, end=min(days) - timedelta(days=1), breakdown=None, granularity=None)
    history = run_micro_macro(backend, definitions, before, macro=primary.goal.name,
                              micro=[m.goal.name for m in micros])
    return replace(result, surrogates=compute_surrogates(result, history))


def compute_surrogates(result: ExperimentResult, history: MicroMacroResult) -> tuple[SurrogatePrediction, ...]:
    """Per micro metric and treatment: Δmacro = Δmicro × (rate with − rate without), its variance by the
    delta method (both factors uncertain), relative to the control's macro rate."""
    primary = next(m for m in result.metrics if m.role is Role.PRIMARY)
    control_macro = primary.arms[0].mean
    effects = {e.goal: e for e in history.overall.micro}
    z = NormalDist().inv_cdf(1 - result.alpha / 2)
    out = []
    for metric in result.metrics:
        effect = effects.get(metric.metric)
        if effect is None or effect.did.rate is None or effect.did_not.rate is None:
            continue
        rw, rwo = effect.did.rate, effect.did_not.rate
        var_d = rw * (1 - rw) / effect.did.units + rwo * (1 - rwo) / effect.did_not.units
        control = metric.arms[0]
        for arm in metric.arms[1:]:
            if control.mean is None or arm.mean is None or not control_macro:
                continue
            change = arm.mean - control.mean
            var_change = arm.mean * (1 - arm.mean) / arm.n + control.mean * (1 - control.mean) / control.n
            d = rw - rwo
            predicted = change * d / control_macro
            se = math.sqrt(d * d * var_change + change * change * var_d + var_change * var_d) / control_macro
            out.append(SurrogatePrediction(metric.metric, arm.variant, predicted, predicted - z * se,
                                           predicted + z * se, change, rw, rwo))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Sums:
    """One metric's sums over some units: y after exposure, x before it, z a ratio's denominator."""

    n: int
    s: float
    ss: float
    x: float
    xx: float
    xy: float
    z: float = 0.0
    zz: float = 0.0
    yz: float = 0.0

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(self.n + other.n, self.s + other.s, self.ss + other.ss, self.x + other.x, self.xx + other.xx,
                     self.xy + other.xy, self.z + other.z, self.zz + other.zz, self.yz + other.yz)


_ZERO = _Sums(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _mean(metric: Metric, sums: _Sums) -> float | None:
    """The metric per exposed unit, or a ratio's Σ numerator ÷ Σ denominator."""
    denominator = sums.z if metric.over is not None else sums.n
    return sums.s / denominator if denominator else None


def _stats(metric: Metric, sums: _Sums) -> MetricStats | RatioStats:
    if metric.over is not None:
        return RatioStats(MeanStats(sums.n, sums.s, sums.ss), MeanStats(sums.n, sums.z, sums.zz), sums.yz)
    if metric.proportion:
        return ProportionStats(sums.n, sums.s)
    return MeanStats(sums.n, sums.s, sums.ss)


def _covariate(metric: Metric, sums: _Sums) -> MetricStats:
    if metric.proportion:
        return ProportionStats(sums.n, sums.x)
    return MeanStats(sums.n, sums.x, sums.xx)


def _arm(metric: Metric, sums: _Sums, use_cuped: bool) -> Any:
    post = _stats(metric, sums)
    if not use_cuped or isinstance(post, RatioStats):
        return post
    return CovariateStats(post, _covariate(metric, sums), sums.xy)


def _compare(metric: Metric, control: _Sums, treatment: _Sums, variant: str, method: Method,
             alpha: float) -> Comparison:
    use_cuped = metric.over is None and all(_covariate(metric, s).variance > 0 for s in (control, treatment))
    a, b = _arm(metric, control, use_cuped), _arm(metric, treatment, use_cuped)
    if method is Method.BAYESIAN:
        bayes = compute_bayesian_test(a, b, alpha=alpha)
        ok = bayes.error is None
        return Comparison(variant, _finite(bayes.point_estimate), *_bounds(bayes.ci), None, None,
                          _finite(bayes.chance_to_win) if ok else None, bayes.risk if ok else None,
                          ok and (bayes.chance_to_win > 1 - alpha / 2 or bayes.chance_to_win < alpha / 2),
                          use_cuped, bayes.error)
    test = compute_sequential_test(a, b, alpha=alpha) if method is Method.SEQUENTIAL else \
        compute_welch_test(a, b, alpha=alpha)
    ok = test.error is None
    p = _finite(test.p_value) if ok else None
    return Comparison(variant, _finite(test.point_estimate), *_bounds(test.ci), p, p, None, None,
                      ok and p is not None and p < alpha, use_cuped, test.error)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _bounds(ci: tuple[float, float]) -> tuple[float | None, float | None]:
    return _finite(ci[0]), _finite(ci[1])


def compute_experiment(experiment: Experiment, rows: Iterable[dict[str, Any]], query: Query, *,
                       method: Method, alpha: float = ALPHA) -> ExperimentResult:
    """The result from the rows of `build_experiment`: pure."""
    k = len(experiment.metrics)
    by_day: dict[int, dict[date, list[_Sums]]] = {v: {} for v in range(len(experiment.variants))}
    unknown = 0
    for row in rows:
        if row["variant"] is None:
            unknown += int(row["n"])
            continue
        by_day[int(row["variant"])][row["day"]] = [
            _Sums(int(row["n"]), row[f"s{i}"], row[f"ss{i}"], row[f"x{i}"], row[f"xx{i}"], row[f"xy{i}"],
                  row.get(f"z{i}") or 0.0, row.get(f"zz{i}") or 0.0, row.get(f"yz{i}") or 0.0)
            for i in range(k)
        ]
    totals = [[sum((d[i] for d in days.values()), _ZERO) for i in range(k)] for days in
              (by_day[v] for v in range(len(experiment.variants)))]
    units = tuple(t[0].n for t in totals)  # every metric covers the same exposed units
    srm = compute_srm(units, experiment.weights)
    results = []
    for i, metric in enumerate(experiment.metrics):
        arms = tuple(ArmMetric(name, totals[v][i].n, _mean(metric, totals[v][i]))
                     for v, name in enumerate(experiment.variants))
        comparisons = tuple(_compare(metric, totals[0][i], totals[v][i], experiment.variants[v], method, alpha)
                            for v in range(1, len(experiment.variants)))
        results.append(MetricResult(metric.name, metric.goal.title, metric.role, metric.proportion, arms,
                                    comparisons))
    results = _correct(results, alpha, method)
    warnings = []
    if srm.mismatch:
        warnings.append(f"sample ratio mismatch (p = {srm.p_value:.2g} < {srm.threshold}): the variants did not "
                        "get the configured shares of units; the assignment or the exposure tracking is broken, "
                        "so the effects are not to be trusted")
    if unknown:
        warnings.append(f"{unknown} units were exposed to a variant the definition does not name")
    if method is Method.FREQUENTIST:
        warnings.append("frequentist p-values hold only at the planned horizon: looking repeatedly and stopping "
                        "at the first significant result inflates false positives (use method: sequential)")
    return ExperimentResult(
        experiment=experiment.key, label=experiment.title, variants=experiment.variants,
        weights=experiment.weights, method=method, alpha=alpha, units=units, unknown_variant_units=unknown,
        srm=srm, srm_mismatch=srm.mismatch, metrics=tuple(results),
        cumulative=_cumulative(experiment, by_day, method, alpha),
        start=query.start, end=query.end, warnings=tuple(warnings),
    )


def _correct(results: list[MetricResult], alpha: float, method: Method) -> list[MetricResult]:
    """Holm across the secondary and guardrail comparisons; adjusted intervals to match."""
    if method is Method.BAYESIAN:
        return results
    family = [(i, j) for i, r in enumerate(results) if r.role is not Role.PRIMARY
              for j, c in enumerate(r.comparisons) if c.p_value is not None]
    if len(family) < 2:
        return results
    adjusted = holm([results[i].comparisons[j].p_value or 1.0 for i, j in family])
    out = [list(r.comparisons) for r in results]
    for (i, j), p in zip(family, adjusted, strict=True):
        c = out[i][j]
        lower, upper = c.lower, c.upper
        if c.effect is not None and c.lower is not None and c.upper is not None and p > 0:
            lower, upper = adjusted_confidence_interval(c.effect, p, alpha=alpha, raw_ci=(c.lower, c.upper))
        out[i][j] = Comparison(c.variant, c.effect, _finite(lower) if lower is not None else None,
                               _finite(upper) if upper is not None else None, c.p_value, p, None, None, p < alpha,
                               c.cuped, c.error)
    return [MetricResult(r.metric, r.label, r.role, r.proportion, r.arms, tuple(out[i]))
            for i, r in enumerate(results)]


def _cumulative(experiment: Experiment, by_day: dict[int, dict[date, list[_Sums]]], method: Method,
                alpha: float) -> tuple[tuple[str, tuple[CumulativePoint, ...]], ...]:
    primary = next((i for i, m in enumerate(experiment.metrics) if m.role is Role.PRIMARY), None)
    if primary is None:
        return ()
    metric = experiment.metrics[primary]
    days = sorted({d for per in by_day.values() for d in per})
    out = []
    for v in range(1, len(experiment.variants)):
        control = treatment = _ZERO
        points = []
        for day in days:
            control += by_day[0].get(day, [_ZERO] * len(experiment.metrics))[primary]
            treatment += by_day[v].get(day, [_ZERO] * len(experiment.metrics))[primary]
            c = _compare(metric, control, treatment, experiment.variants[v],
                         Method.SEQUENTIAL if method is Method.FREQUENTIST else method, alpha)
            points.append(CumulativePoint(day, control.n + treatment.n, c.effect, c.lower, c.upper))
        out.append((experiment.variants[v], tuple(points)))
    return tuple(out)
