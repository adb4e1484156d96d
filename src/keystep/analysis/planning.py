"""Before a test starts: how many days each candidate metric needs to detect a given relative effect.

From the store: the units (the experiment's unit) first seen per day over the range — the traffic an
experiment would enrol, times its coverage — and each metric's baseline per unit (a conversion rate,
or the mean and variance of a value or count). Candidates: the experiment's own metrics and every micro
and macro goal as a conversion metric, so the plan shows side by side how much sooner a frequent micro
conversion reaches a decision than the rare macro one. Per candidate: the total units and the days for
a fixed-horizon test (one look) and for keystep's sequential test (look every day), at the given power
and α, split by the experiment's weights (the smallest arm decides, so the units needed are computed for
equal arms of the smallest weight's size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from keystep.backends.base import Backend
from keystep.conversions.definitions import Definitions
from keystep.experiments.definitions import Experiment, Measure, Metric, Role
from keystep.query import Query
from keystep.sql.experiments import build_baselines
from keystep.stats.power import MetricDesign, compute_sample_size
from keystep.stats.sequential import DEFAULT_TUNING


@dataclass(frozen=True, slots=True)
class CandidatePlan:
    metric: str
    label: str
    kind: str  # micro | macro
    role: str  # primary | secondary | guardrail | candidate
    proportion: bool
    baseline: float | None  # per unit: the rate, or the mean value / count
    units_fixed: int | None
    units_sequential: int | None
    days_fixed: float | None
    days_sequential: float | None


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    experiment: str
    effect: float  # the relative effect to detect
    power: float
    alpha: float
    units_per_day: float  # new units per day times coverage
    observed_days: float
    start: date | None
    end: date | None
    candidates: tuple[CandidatePlan, ...]  # fastest first


def _candidates(definitions: Definitions, experiment: Experiment) -> tuple[Metric, ...]:
    own = list(experiment.metrics)
    names = {m.name for m in own}
    extra = [Metric(g.name, g, Measure.CONVERSION, Role.SECONDARY) for g in definitions.goals if g.name not in names]
    return (*own, *extra)


def run_plan(backend: Backend, definitions: Definitions, key: str, query: Query, *, effect: float = 0.05,
             power: float = 0.8, alpha: float = 0.05) -> ExperimentPlan:
    experiment = definitions.experiment(key)
    metrics = _candidates(definitions, experiment)
    row = next(iter(backend.execute(build_baselines(metrics, experiment.unit, query))))
    own = {m.name for m in experiment.metrics}
    return compute_plan(experiment, metrics, row, query, own=own, effect=effect, power=power, alpha=alpha)


def compute_plan(experiment: Experiment, metrics: tuple[Metric, ...], row: dict[str, Any], query: Query, *,
                 own: set[str], effect: float, power: float, alpha: float) -> ExperimentPlan:
    """The plan from the row of `build_baselines`: pure."""
    n = int(row["n"] or 0)
    first, last = row["first_seen"], row["last_seen"]
    days = max(1.0, (last - first).total_seconds() / 86400) if n and first and last else 0.0
    per_day = n / days * experiment.coverage if days else 0.0
    arms = len(experiment.variants)
    # the smallest arm's share decides: plan as if every arm had it
    scale = 1.0 / (min(experiment.weights) * arms)
    out = []
    for i, metric in enumerate(metrics):
        s, ss = float(row[f"s{i}"] or 0.0), float(row[f"ss{i}"] or 0.0)
        mean = s / n if n else None
        design = None
        if mean is not None and mean > 0:
            if metric.proportion and mean < 1:
                design = MetricDesign.conversion(mean, effect)
            elif not metric.proportion and n > 1:
                variance = (ss - s * s / n) / (n - 1)
                design = MetricDesign(mean, variance, effect) if variance > 0 else None
        fixed = seq = None
        if design is not None:
            fixed = compute_sample_size(design, arms, power=power, alpha=alpha)
            seq = compute_sample_size(design, arms, power=power, alpha=alpha, sequential_tuning=DEFAULT_TUNING)
        role = next((m.role.value for m in experiment.metrics if m.name == metric.name), "candidate")
        out.append(CandidatePlan(
            metric=metric.name, label=metric.goal.title, kind=metric.goal.kind.value,
            role=role if metric.name in own else "candidate", proportion=metric.proportion, baseline=mean,
            units_fixed=None if fixed is None else math.ceil(fixed * scale),
            units_sequential=None if seq is None else math.ceil(seq * scale),
            days_fixed=_days(fixed, scale, per_day), days_sequential=_days(seq, scale, per_day),
        ))
    out.sort(key=lambda c: (c.days_sequential is None, c.days_sequential or 0.0, c.metric))
    return ExperimentPlan(experiment.key, effect, power, alpha, per_day, days, query.start, query.end, tuple(out))


def _days(units: int | None, scale: float, per_day: float) -> float | None:
    return None if units is None or not per_day else units * scale / per_day
