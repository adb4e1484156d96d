"""Kaplan–Meier survival curves for right-censored durations, with Greenwood intervals.

Pure numerics. `kaplan_meier(durations, observed, weights)` takes one row per (duration, status) group
with its count (`weights`), so the database can return grouped counts instead of one row per unit.

- S(t) = Π over event times tᵢ ≤ t of (1 − dᵢ / nᵢ): dᵢ events among the nᵢ units still at risk
  (duration ≥ tᵢ); units censored at tᵢ are at risk at tᵢ (the usual convention).
- Pointwise 95% intervals on the log(−log S) scale with Greenwood's variance
  Σ dᵢ / (nᵢ (nᵢ − dᵢ)) (the "exponential Greenwood" interval, the default of lifelines and of R's
  `survival` with `conf.type = "log-log"`); undefined (None) where S is 1 or 0.
- The q-quantile of the *event* distribution (the time by which a share q has had the event) is the
  first time with S(t) ≤ 1 − q; its interval takes the first times at which the upper and the lower
  band reach 1 − q (Brookmeyer & Crowley 1982, as lifelines' `qth_survival_times` on the bands).
  Infinite when the curve never gets there.
- `log_rank_against_rest(durations, observed, groups, weights)`: the log-rank (Mantel–Cox) test of each
  group's curve against the curve of all the other rows pooled (with two groups, the usual two-sample
  test). At every event time tᵢ, with nᵢ units at risk of which n_gᵢ in the group and dᵢ events, the
  group is expected to have dᵢ · n_gᵢ / nᵢ of the events if it had the rest's hazard; O − E summed over
  the times, divided by the square root of its hypergeometric variance
  Σ dᵢ (n_gᵢ / nᵢ) (1 − n_gᵢ / nᵢ) (nᵢ − dᵢ) / (nᵢ − 1), is standard normal under equal hazards, and
  (O − E)² / V is compared with χ² on 1 degree of freedom (as `lifelines.statistics.logrank_test` and
  R's `survdiff`). Censoring enters through the numbers at risk, ties through the (nᵢ − dᵢ) / (nᵢ − 1)
  factor. The test compares whole curves, weighting every event time equally; it has most power when
  one group's hazard is a constant multiple of the other's.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class SurvivalQuantile:
    value: float  # math.inf when the curve never reaches the level
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class SurvivalCurve:
    """One entry per distinct duration (events or censorings), in increasing order."""

    times: tuple[float, ...]
    at_risk: tuple[int, ...]
    events: tuple[int, ...]
    censored: tuple[int, ...]
    survival: tuple[float, ...]
    lower: tuple[float | None, ...]
    upper: tuple[float | None, ...]

    def survival_at(self, t: float) -> float:
        """S(t): 1 before the first time, the last value after the last."""
        i = bisect_right(self.times, t)
        return 1.0 if i == 0 else self.survival[i - 1]

    def quantile(self, q: float) -> SurvivalQuantile:
        """The time by which a share `q` of the units have had the event, with its interval."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be between 0 and 1, got {q}")
        level = 1.0 - q
        lower_band = [s if lo is None else lo for s, lo in zip(self.survival, self.lower, strict=True)]
        upper_band = [s if hi is None else hi for s, hi in zip(self.survival, self.upper, strict=True)]
        return SurvivalQuantile(
            value=self._first_at_or_below(self.survival, level),
            lower=self._first_at_or_below(lower_band, level),
            upper=self._first_at_or_below(upper_band, level),
        )

    def _first_at_or_below(self, curve: Sequence[float], level: float) -> float:
        for t, s in zip(self.times, curve, strict=True):
            if s <= level + 1e-12:
                return t
        return math.inf


def kaplan_meier(
    durations: Sequence[float],
    observed: Sequence[bool],
    weights: Sequence[int] | None = None,
    confidence: float = CONFIDENCE,
) -> SurvivalCurve:
    """The Kaplan–Meier estimate; `observed[i]` is False for a censored duration; `weights[i]` units."""
    counts = _counts(durations, observed, weights)
    by_time: dict[float, list[int]] = {}
    for d, event, w in zip(durations, observed, counts, strict=True):
        slot = by_time.setdefault(float(d), [0, 0])
        slot[0 if event else 1] += int(w)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    at_risk = sum(counts)
    s, greenwood = 1.0, 0.0
    times, risk, events, censored, survival, lower, upper = [], [], [], [], [], [], []
    for t in sorted(by_time):
        d, c = by_time[t]
        if at_risk > 0 and d > 0:
            s *= 1.0 - d / at_risk
            greenwood = math.inf if d >= at_risk else greenwood + d / (at_risk * (at_risk - d))
        times.append(t)
        risk.append(at_risk)
        events.append(d)
        censored.append(c)
        survival.append(s)
        lo, hi = _log_log_band(s, greenwood, z)
        lower.append(lo)
        upper.append(hi)
        at_risk -= d + c
    return SurvivalCurve(tuple(times), tuple(risk), tuple(events), tuple(censored), tuple(survival),
                         tuple(lower), tuple(upper))


def _log_log_band(s: float, greenwood: float, z: float) -> tuple[float | None, float | None]:
    if not 0.0 < s < 1.0 or not math.isfinite(greenwood):
        return None, None
    log_s = math.log(s)
    half = z * math.sqrt(greenwood) / abs(log_s)
    centre = math.log(-log_s)
    return math.exp(-math.exp(centre + half)), math.exp(-math.exp(centre - half))


@dataclass(frozen=True, slots=True)
class LogRankTest:
    """One group's curve against the rest's (module doc)."""

    observed: int  # events in the group
    expected: float  # events expected in the group if it had the rest's hazard
    variance: float  # of observed − expected under equal hazards
    statistic: float | None  # (observed − expected)² / variance, χ² with 1 degree of freedom
    p_value: float | None  # None when the variance is 0: no event while both had units at risk


def log_rank_against_rest(
    durations: Sequence[float],
    observed: Sequence[bool],
    groups: Sequence[str],
    weights: Sequence[int] | None = None,
) -> dict[str, LogRankTest]:
    """The log-rank test of every group (`groups[i]` is row i's) against all other rows together, in the
    order the groups first appear; `observed` and `weights` as for `kaplan_meier`."""
    counts = _counts(durations, observed, weights)
    if len(groups) != len(durations):
        raise ValueError("durations and groups must have the same length")
    labels = list(dict.fromkeys(groups))
    code = {label: i for i, label in enumerate(labels)}
    group = np.fromiter((code[g] for g in groups), dtype=np.intp, count=len(groups))
    times, slot = np.unique(np.asarray(durations, dtype=float), return_inverse=True)
    w = np.asarray(counts, dtype=float)
    event = np.asarray(observed, dtype=bool)

    def at_risk(rows: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        """Units of `rows` with a duration at or after each time (censored at a time: still at risk)."""
        leaving = np.bincount(slot[rows], weights=w[rows], minlength=len(times))
        return np.cumsum(leaving[::-1], dtype=np.float64)[::-1]

    d = np.bincount(slot, weights=w * event, minlength=len(times))
    hit = d > 0  # the event times
    d, n = d[hit], at_risk(np.ones(len(w), dtype=bool))[hit]
    ties = (n - d) / np.maximum(n - 1, 1)  # n = 1: the group's share is 0 or 1, and the term is 0 anyway
    out = {}
    for i, label in enumerate(labels):
        rows = group == i
        share = at_risk(rows)[hit] / n
        o, e = int(w[rows & event].sum()), float((d * share).sum())
        v = float((d * share * (1 - share) * ties).sum())
        statistic = (o - e) ** 2 / v if v > 0 else None
        out[label] = LogRankTest(
            observed=o,
            expected=e,
            variance=v,
            statistic=statistic,
            p_value=None if statistic is None else math.erfc(math.sqrt(statistic / 2)),
        )
    return out


def _counts(durations: Sequence[float], observed: Sequence[bool], weights: Sequence[int] | None) -> list[int]:
    """The weights (1 per row by default), after checking the inputs agree and are non-negative."""
    counts = list(weights) if weights is not None else [1] * len(durations)
    if not len(durations) == len(observed) == len(counts):
        raise ValueError("durations, observed and weights must have the same length")
    if any(w < 0 for w in counts) or any(d < 0 or math.isnan(d) for d in durations):
        raise ValueError("durations and weights must be non-negative")
    return counts
