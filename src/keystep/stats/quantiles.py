"""Quantile metrics (e.g. the 90th percentile of order value) summarised for the effect engine.

SQL returns per arm the sample quantile ``q̂_ν`` and the order statistics bracketing its 95% confidence
interval (``quantile_lower``, ``quantile_upper``), ``n`` units and ``n*`` observations (``n* > n`` when
units contribute several events). Following Deng, Knoblich & Lu (2018, "Applying the delta method in
metric analytics", §4) as gbstats does, the per-unit variance is recovered from the interval width:

    σ² = (n*/n) · (n − 1) · ((upper − lower) / (2 z_{0.975}))²

floored at 1e-5 once ``n ≥ 100`` (an interval of zero width would otherwise claim certainty). The arm's
``mean`` is the quantile itself, so quantile arms plug into :func:`keystep.stats.effects.compute_effect`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats as sps

__all__ = ["QuantileStats"]

_Z_975 = float(sps.norm.ppf(0.975))
_VARIANCE_FLOOR = 1e-5
_FLOOR_MIN_N = 100


@dataclass(frozen=True)
class QuantileStats:
    """Sample quantile ``quantile_hat`` at level ``nu`` with its 95% interval bounds."""

    n: int
    n_star: int
    nu: float
    quantile_hat: float
    quantile_lower: float
    quantile_upper: float

    @property
    def mean(self) -> float:
        return self.quantile_hat

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        width = (self.quantile_upper - self.quantile_lower) / (2 * _Z_975)
        raw = (self.n_star / self.n) * (self.n - 1) * width**2
        return raw if self.n < _FLOOR_MIN_N else max(raw, _VARIANCE_FLOOR)
