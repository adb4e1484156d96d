"""Winsorization (capping) of mean metrics, so a few huge orders cannot dominate an experiment.

Each unit's value ``x`` is replaced by ``min(x, cap)`` (and optionally ``max(x, floor)``), where the cap is
either a fixed value or a percentile of the pooled values of all arms (one cap for every arm keeps the
comparison fair). Sufficient statistics cannot be capped after the fact: ``Σx`` and ``Σx²`` do not say
which units exceeded the cap. So capping happens where the unit values are:

* in Python, :func:`cap_values` on an array, and :func:`capped_mean_stats` to summarise it;
* in SQL (the normal path), the cap is applied per unit *before* aggregating::

      -- percentile cap computed once over all exposed units (DuckDB / ClickHouse: quantile_cont /
      -- quantileExact), then
      SELECT variant, count(*) AS n,
             sum(least(value, :cap)) AS sum,
             sum(least(value, :cap) * least(value, :cap)) AS sum_squares
      FROM unit_values GROUP BY variant

  (``greatest(least(value, :cap), :floor)`` for two-sided capping). The percentile uses linear
  interpolation between order statistics, like :func:`numpy.quantile`'s default and ``quantile_cont``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keystep.stats.sufficient import MeanStats

__all__ = ["cap_values", "capped_mean_stats", "percentile_cap"]

_Array = npt.NDArray[np.float64]


def percentile_cap(values: Sequence[float] | _Array, quantile: float) -> float:
    """The value at ``quantile`` (e.g. 0.99) of ``values``, linearly interpolated."""
    if not 0 < quantile <= 1:
        raise ValueError("quantile must be in (0, 1]")
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("cannot take a percentile of no values")
    return float(np.quantile(arr, quantile))


def cap_values(
    values: Sequence[float] | _Array, *, upper: float | None = None, lower: float | None = None
) -> _Array:
    """``min(max(x, lower), upper)`` elementwise; either bound may be omitted."""
    if upper is not None and lower is not None and lower > upper:
        raise ValueError("lower cap above upper cap")
    arr = np.asarray(values, dtype=np.float64)
    return np.clip(arr, lower, upper) if upper is not None or lower is not None else arr.copy()


def capped_mean_stats(
    values: Sequence[float] | _Array, *, upper: float | None = None, lower: float | None = None
) -> MeanStats:
    """Sufficient statistics of the capped values (what the SQL above returns for one arm)."""
    capped = cap_values(values, upper=upper, lower=lower)
    return MeanStats(int(capped.size), float(capped.sum()), float(np.square(capped).sum()))
