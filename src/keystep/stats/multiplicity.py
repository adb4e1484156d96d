"""Multiplicity: adjusted p-values for many comparisons, and intervals that agree with them.

The p-value adjustments themselves (Holm's step-down family-wise correction and Benjamini–Hochberg's
false-discovery-rate correction) live in :mod:`keystep.stats.multiple_testing`; this module dispatches to
them by name and widens each confidence interval to match its adjusted p-value, as GrowthBook does:
the standard error implied by the adjusted p-value is ``se_adj = |Δ̂ / z_{1 − p_adj/2}|`` and the adjusted
interval is ``Δ̂ ± z_{1 − α/2} · se_adj``, so it excludes 0 exactly when ``p_adj < α``. An adjusted
interval is only used when it is wider than the unadjusted one (an adjustment never narrows an interval).
Reference: GrowthBook ``packages/shared`` ``adjustedCI`` / ``setAdjustedCIs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from scipy import stats as sps

from keystep.stats.multiple_testing import benjamini_hochberg, holm

__all__ = ["Correction", "adjust_p_values", "adjusted_confidence_interval"]

Correction = Literal["holm", "benjamini-hochberg"]


def adjust_p_values(p_values: Sequence[float], method: Correction) -> list[float]:
    """Adjusted p-values in input order: ``"holm"`` (family-wise error) or ``"benjamini-hochberg"`` (FDR)."""
    if method == "holm":
        return holm(p_values)
    if method == "benjamini-hochberg":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown correction {method!r}")


def adjusted_confidence_interval(
    estimate: float,
    adjusted_p: float,
    *,
    alpha: float = 0.05,
    raw_ci: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The two-sided interval implied by ``adjusted_p`` for the effect ``estimate``.

    With ``raw_ci`` the wider of the two is returned. A zero estimate carries no information about the
    standard error and returns ``raw_ci`` (or ``(0, 0)``); ``adjusted_p = 1`` gives an unbounded interval.
    """
    if not 0 < adjusted_p <= 1:
        raise ValueError("adjusted_p must be in (0, 1]")
    if estimate == 0:
        return raw_ci if raw_ci is not None else (0.0, 0.0)
    z_adjusted = float(sps.norm.isf(adjusted_p / 2))
    if z_adjusted <= 0:
        adjusted = (-math.inf, math.inf)
    else:
        half = float(sps.norm.isf(alpha / 2)) * abs(estimate / z_adjusted)
        adjusted = (estimate - half, estimate + half)
    if raw_ci is not None and adjusted[1] - adjusted[0] <= raw_ci[1] - raw_ci[0]:
        return raw_ci
    return adjusted
