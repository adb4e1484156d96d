"""Sample ratio mismatch (SRM): are the units split across arms as the configured weights say?

Pearson's chi-square goodness-of-fit test of the observed unit counts ``o_i`` against the expected counts
``e_i = N · w_i / Σw`` over the arms with a positive weight (arms with weight 0 are left out, as GrowthBook's
back-end does), ``χ² = Σ (o_i − e_i)² / e_i`` on ``k − 1`` degrees of freedom. With fewer than two weighted
arms, no units, or counts and weights of different lengths there is nothing to test and ``p = 1``.
A mismatch is flagged when ``p < threshold`` (default 0.001, GrowthBook's ``DEFAULT_SRM_THRESHOLD``): SRM
checks run on every experiment and every look, so a strict threshold keeps false alarms rare.
Reference: Fabijan et al., "Diagnosing sample ratio mismatch in online controlled experiments" (KDD 2019).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

__all__ = ["DEFAULT_SRM_THRESHOLD", "SrmResult", "compute_srm"]

DEFAULT_SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Chi-square statistic, degrees of freedom, p-value, the expected counts of the weighted arms (in
    input order, ``None`` for arms left out), and whether the mismatch is flagged."""

    chi_square: float
    dof: int
    p_value: float
    expected: tuple[float | None, ...]
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold


def compute_srm(
    users: Sequence[float], weights: Sequence[float], *, threshold: float = DEFAULT_SRM_THRESHOLD
) -> SrmResult:
    """Test the observed ``users`` per arm against the configured ``weights`` (any positive scale)."""
    if any(u < 0 for u in users) or any(w < 0 for w in weights):
        raise ValueError("users and weights must be non-negative")
    none: tuple[float | None, ...] = tuple(None for _ in users)
    if len(users) != len(weights):
        return SrmResult(0.0, 0, 1.0, none, threshold)
    arms = [i for i, w in enumerate(weights) if w > 0]
    total = float(sum(users[i] for i in arms))
    if len(arms) < 2 or total <= 0:
        return SrmResult(0.0, 0, 1.0, none, threshold)
    weight_sum = float(sum(weights[i] for i in arms))
    expected: list[float | None] = [None] * len(users)
    chi_square = 0.0
    for i in arms:
        e = total * weights[i] / weight_sum
        expected[i] = e
        chi_square += (users[i] - e) ** 2 / e
    dof = len(arms) - 1
    p_value = float(sps.chi2.sf(chi_square, dof))
    return SrmResult(chi_square, dof, p_value, tuple(expected), threshold)
