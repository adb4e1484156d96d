"""The ASOS experiments (78 real experiments, CC BY 4.0; tests/data/README.md): keystep's fixed-horizon
Welch test on the last complete row of every metric stream, against an independent computation from the
same summary statistics.

Absolute effect (treatment − control): the p-value from ``scipy.stats.ttest_ind_from_stats(...,
equal_var=False)``, the interval by hand (``Δ ± t_{0.975, ν}·se`` with Welch–Satterthwaite ν).
Relative effect (lift): estimate, delta-method standard error, interval and p-value by hand with
``scipy.stats.t``. Rows with an empty variance are skipped and counted; nothing is dropped silently.
bench/asos.py replays the sequential analysis over the same streams (docs/experiments-statistics.md).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from typing import Any

import pytest
from scipy import stats as sps

from conftest import DATA
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.sufficient import MeanStats

ASOS = DATA / "asos_digital_experiments_dataset.csv"
Row = dict[str, str]


def complete(row: Row) -> bool:
    return bool(row["variance_c"].strip() and row["variance_t"].strip())


@pytest.fixture(scope="module")
def streams() -> dict[tuple[str, str, str], list[Row]]:
    grouped: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    with ASOS.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            grouped[(row["experiment_id"], row["variant_id"], row["metric_id"])].append(row)
    for rows in grouped.values():
        rows.sort(key=lambda r: float(r["time_since_start"]))
    return dict(grouped)


def arm(row: Row, side: str) -> MeanStats:
    """keystep's sufficient statistics from the published count, mean and (sample) variance."""
    n, mean, var = int(row[f"count_{side}"]), float(row[f"mean_{side}"]), float(row[f"variance_{side}"])
    return MeanStats(n, n * mean, (n - 1) * var + n * mean * mean)


def summary(row: Row, side: str) -> tuple[float, float, int]:
    return float(row[f"mean_{side}"]), float(row[f"variance_{side}"]), int(row[f"count_{side}"])


def welch_dof(vc: float, nc: int, vt: float, nt: int) -> float:
    return (vt / nt + vc / nc) ** 2 / ((vt / nt) ** 2 / (nt - 1) + (vc / nc) ** 2 / (nc - 1))


def finals(streams: dict[tuple[str, str, str], list[Row]]) -> tuple[dict[tuple[str, str, str], Row], list[Any]]:
    used, skipped = {}, []
    for key, rows in streams.items():
        full = [r for r in rows if complete(r)]
        if full:
            used[key] = full[-1]
        else:
            skipped.append(key)
    return used, skipped


def test_every_stream_is_used_or_counted_as_skipped(streams: dict[tuple[str, str, str], list[Row]]) -> None:
    used, skipped = finals(streams)
    all_rows = [r for rows in streams.values() for r in rows]
    assert len(all_rows) == 24_153
    assert len({k[0] for k in streams}) == 78
    assert len(streams) == 396
    assert sum(not complete(r) for r in all_rows) == 779  # rows with an empty variance, skipped
    assert (len(used), len(skipped)) == (381, 15)
    # The 15 skipped streams have no complete row at all, and every used stream's last row is complete:
    # the final-time test really is at the end of each used stream.
    assert all(not any(complete(r) for r in streams[k]) for k in skipped)
    assert all(used[k] is streams[k][-1] for k in used)


def test_absolute_welch_matches_scipy_ttest_ind_from_stats(streams: dict[tuple[str, str, str], list[Row]]) -> None:
    used, _ = finals(streams)
    checked = significant = 0
    for key, row in sorted(used.items()):
        (mc, vc, nc), (mt, vt, nt) = summary(row, "c"), summary(row, "t")
        ref = sps.ttest_ind_from_stats(mt, math.sqrt(vt), nt, mc, math.sqrt(vc), nc, equal_var=False)
        r = compute_welch_test(arm(row, "c"), arm(row, "t"), difference_type="absolute")
        assert r.error is None, key
        se = math.sqrt(vt / nt + vc / nc)
        dof = welch_dof(vc, nc, vt, nt)
        half = float(sps.t.ppf(0.975, dof)) * se
        assert r.point_estimate == pytest.approx(mt - mc, rel=1e-9, abs=1e-12), key
        assert r.se == pytest.approx(se, rel=1e-9), key
        assert r.dof == pytest.approx(dof, rel=1e-9), key
        assert r.point_estimate / r.se == pytest.approx(float(ref.statistic), rel=1e-8, abs=1e-10), key
        assert r.p_value == pytest.approx(float(ref.pvalue), rel=1e-10, abs=1e-300), key
        assert list(r.ci) == pytest.approx([mt - mc - half, mt - mc + half], rel=1e-9, abs=1e-12), key
        assert r.significant == (float(ref.pvalue) < 0.05), key
        checked += 1
        significant += r.significant
    assert checked == 381
    assert significant == 105  # absolute and relative agree on significance here (see below)


def test_relative_welch_matches_the_delta_method_by_hand(streams: dict[tuple[str, str, str], list[Row]]) -> None:
    used, _ = finals(streams)
    checked = significant = 0
    for key, row in sorted(used.items()):
        (mc, vc, nc), (mt, vt, nt) = summary(row, "c"), summary(row, "t")
        r = compute_welch_test(arm(row, "c"), arm(row, "t"), difference_type="relative")
        assert r.error is None, key
        lift = (mt - mc) / abs(mc)
        se = math.sqrt(vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc))
        dof = welch_dof(vc, nc, vt, nt)
        p = 2 * float(sps.t.sf(abs(lift / se), dof))
        half = float(sps.t.ppf(0.975, dof)) * se
        assert r.point_estimate == pytest.approx(lift, rel=1e-9, abs=1e-12), key
        assert r.se == pytest.approx(se, rel=1e-9), key
        assert r.p_value == pytest.approx(p, rel=1e-10, abs=1e-300), key
        assert list(r.ci) == pytest.approx([lift - half, lift + half], rel=1e-9, abs=1e-12), key
        checked += 1
        significant += r.significant
    assert checked == 381
    assert significant == 105
