"""Adjusted p-values for a family of tests: Holm (family-wise error) and Benjamini–Hochberg (FDR).

Both return adjusted p-values in the input order, capped at 1, monotone in the raw p-values, so that
"adjusted p < α" is the decision of the corresponding step-down (Holm 1979) or step-up
(Benjamini & Hochberg 1995) procedure at level α.
"""

from __future__ import annotations

from collections.abc import Sequence


def _check(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    for p in values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be in [0, 1], got {p}")
    return values


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest p times (m − k + 1), made non-decreasing."""
    values = _check(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg's step-up adjustment: p × m / rank, made non-decreasing from the largest down."""
    values = _check(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted
