"""Capping: arrays, capped sufficient statistics, and the SQL form documented for the query layer."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from keystep.stats.winsorize import cap_values, capped_mean_stats, percentile_cap


def test_cap_values_bounds_each_value() -> None:
    assert cap_values([1.0, 5.0, 10.0, -3.0], upper=6.0).tolist() == [1.0, 5.0, 6.0, -3.0]
    assert cap_values([1.0, 5.0, 10.0, -3.0], upper=6.0, lower=0.0).tolist() == [1.0, 5.0, 6.0, 0.0]
    with pytest.raises(ValueError):
        cap_values([1.0], upper=0.0, lower=1.0)


def test_percentile_cap_interpolates_between_order_statistics() -> None:
    values = [10.0, 1.0, 4.0, 2.0, 3.0]  # sorted 1 2 3 4 10; position 0.9*4 = 3.6
    assert percentile_cap(values, 0.9) == pytest.approx(4 + 0.6 * (10 - 4))
    assert percentile_cap(values, 1.0) == 10.0


def test_capped_stats_are_the_stats_of_the_capped_values() -> None:
    values = [1.0, 2.0, 50.0, 3.0]
    stats = capped_mean_stats(values, upper=5.0)
    assert (stats.n, stats.sum, stats.sum_squares) == (4, 11.0, 1 + 4 + 25 + 9)


def test_sql_least_cap_gives_the_same_statistics() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(3, 1.2, 2000)
    cap = percentile_cap(values, 0.99)
    con = duckdb.connect()
    con.execute("CREATE TABLE unit_values AS SELECT unnest(?::DOUBLE[]) AS value", [values.tolist()])
    row = con.execute(
        "SELECT quantile_cont(value, 0.99), count(*), sum(least(value, $cap)), "
        "sum(least(value, $cap) * least(value, $cap)) FROM unit_values",
        {"cap": cap},
    ).fetchone()
    assert row is not None
    sql_cap, n, total, total_sq = row
    stats = capped_mean_stats(values, upper=cap)
    assert sql_cap == pytest.approx(cap)
    assert (n, total, total_sq) == (stats.n, pytest.approx(stats.sum), pytest.approx(stats.sum_squares))
    assert stats.variance < np.var(values, ddof=1)
