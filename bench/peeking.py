"""Benchmark: what peeking does to A/A tests, and how long keystep's sequential test takes to decide.

    .venv/bin/python bench/peeking.py                          # 4,000 tests per scenario, 30 daily looks
    .venv/bin/python bench/peeking.py --tests 10000 --seed 3   # more tests, another seed

Simulated experiments on a proportion metric with two equal arms of ``--daily-units`` new units each per
day (default 5,000 per arm, a shop with 10,000 visitors a day), looked at once a day on the cumulative
totals, with keystep's defaults (relative effect, two-sided, α = 0.05):

* **A/A** (no effect) at a micro-conversion rate (20%, e.g. add to cart) and a macro-conversion rate (2%, e.g.
  purchase), over ``--days`` looks. The false-positive rate of each procedure is the share of tests that
  ever reject: the fixed-horizon Welch t test (``compute_welch_test``) applied at every look ("naive
  peeking"), the same test at the last look only, and the sequential test (``compute_sequential_test``:
  asymptotic confidence sequences) at every look, with N* = 5,000 (keystep's default) and with N* tuned to
  the planned sample (both arms over ``--days``).
* **A/B** with a true +5% relative lift: 20% → 21% (micro) and 2% → 2.1% (macro), followed for
  ``--effect-days`` daily looks; the days until the sequential test first rejects with the right sign (a
  correct decision), the share of tests decided by ``--days`` and by ``--effect-days``, wrong-sign decisions,
  and for reference the power of a single fixed-horizon test at ``--days``.

The arithmetic is vectorised with numpy over tests × looks, using the same formulas as keystep (delta-method
relative effect, Welch–Satterthwaite degrees of freedom, the mixture boundary and p-value of
:mod:`keystep.stats.sequential`); before anything is reported, a random sample of (test, look) cells is
recomputed with keystep's own ``compute_welch_test`` and ``compute_sequential_test`` and must agree, so the
numbers are keystep's. A false-positive rate above α beyond Monte Carlo error is printed as a FINDING.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from keystep.stats.frequentist import compute_welch_test
from keystep.stats.sequential import DEFAULT_TUNING, compute_sequential_test, sequential_rho
from keystep.stats.sufficient import ProportionStats

ALPHA = 0.05
MICRO, MACRO = 0.20, 0.02
LIFT = 0.05
CHECKED_CELLS = 400


@dataclass
class Looks:
    """Cumulative totals of many experiments at each daily look: arrays of shape (tests, looks)."""

    n_a: np.ndarray[Any, Any]
    n_b: np.ndarray[Any, Any]
    conv_a: np.ndarray[Any, Any]
    conv_b: np.ndarray[Any, Any]


def simulate(rng: np.random.Generator, tests: int, days: int, daily: int, rate_a: float, rate_b: float) -> Looks:
    days_axis = np.arange(1, days + 1, dtype=float)
    n = np.broadcast_to(days_axis * daily, (tests, days)).copy()
    conv_a = np.cumsum(rng.binomial(daily, rate_a, (tests, days)), axis=1).astype(float)
    conv_b = np.cumsum(rng.binomial(daily, rate_b, (tests, days)), axis=1).astype(float)
    return Looks(n, n.copy(), conv_a, conv_b)


def relative_effect(looks: Looks) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Relative effect, its delta-method variance and the Welch degrees of freedom (NaN when not estimable:
    an arm without variance, as keystep's ``zero_or_negative_variance``)."""
    pa, pb = looks.conv_a / looks.n_a, looks.conv_b / looks.n_b
    va, vb = pa * (1 - pa), pb * (1 - pb)
    ok = (va > 0) & (vb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(ok, (pb - pa) / np.abs(pa), np.nan)
        var = np.where(ok, vb / (pa**2 * looks.n_b) + va * pb**2 / (pa**4 * looks.n_a), np.nan)
        ma, mb = va / looks.n_a, vb / looks.n_b
        dof = np.where(ok, (ma + mb) ** 2 / (mb**2 / (looks.n_b - 1) + ma**2 / (looks.n_a - 1)), np.nan)
    return est, var, dof


def welch_p(est: np.ndarray[Any, Any], var: np.ndarray[Any, Any], dof: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(2 * sps.t.sf(np.abs(est / np.sqrt(var)), dof))


def sequential_p(
    est: np.ndarray[Any, Any], var: np.ndarray[Any, Any], n_total: np.ndarray[Any, Any], tuning: float
) -> np.ndarray[Any, Any]:
    """Two-sided always-valid p-value: ``min(1, sqrt(Nρ²+1)·exp(−ρ²·N·Δ̂²/se² / (2(Nρ²+1))))``."""
    rho2 = sequential_rho(ALPHA, tuning) ** 2
    nr2p1 = n_total * rho2 + 1
    return np.asarray(np.minimum(1.0, np.sqrt(nr2p1) * np.exp(-rho2 * n_total * est**2 / var / (2 * nr2p1))))


def check_against_keystep(rng: np.random.Generator, looks: Looks, tunings: list[float]) -> float:
    """Recompute random cells with keystep's scalar functions; return the largest relative difference."""
    est, var, dof = relative_effect(looks)
    p_fixed = welch_p(est, var, dof)
    n_total = looks.n_a + looks.n_b
    worst = 0.0
    tests, days = est.shape
    for _ in range(CHECKED_CELLS):
        i, d = int(rng.integers(tests)), int(rng.integers(days))
        a = ProportionStats(int(looks.n_a[i, d]), float(looks.conv_a[i, d]))
        b = ProportionStats(int(looks.n_b[i, d]), float(looks.conv_b[i, d]))
        fixed = compute_welch_test(a, b, alpha=ALPHA)
        pairs = [(fixed.p_value, p_fixed[i, d]), (fixed.point_estimate, est[i, d])]
        for tuning in tunings:
            seq = compute_sequential_test(a, b, alpha=ALPHA, tuning=tuning)
            mine = sequential_p(est[i : i + 1, d], var[i : i + 1, d], n_total[i : i + 1, d], tuning)[0]
            pairs.append((seq.p_value, mine))
            if (seq.p_value < ALPHA) != (mine < ALPHA):
                raise AssertionError(f"sequential decision differs from keystep at test {i}, day {d + 1}")
        if (fixed.p_value < ALPHA) != (p_fixed[i, d] < ALPHA):
            raise AssertionError(f"fixed-horizon decision differs from keystep at test {i}, day {d + 1}")
        for theirs, mine in pairs:
            scale = max(abs(theirs), 1e-300)
            worst = max(worst, abs(theirs - mine) / scale if theirs != mine else 0.0)
    if worst > 1e-7:
        raise AssertionError(f"vectorised numbers differ from keystep's by {worst:.2e} (relative)")
    return worst


def mc_se(share: float, tests: int) -> float:
    return math.sqrt(share * (1 - share) / tests)


def first_day(rejected: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """1-based day of each test's first rejection; inf when it never rejects."""
    any_ = rejected.any(axis=1)
    return np.where(any_, rejected.argmax(axis=1) + 1.0, np.inf)


def aa_rates(looks: Looks, tunings: dict[str, float]) -> dict[str, float]:
    est, var, dof = relative_effect(looks)
    with np.errstate(invalid="ignore"):
        fixed = welch_p(est, var, dof) < ALPHA
    rates = {"fixed-horizon test at every look (naive peeking)": float(fixed.any(axis=1).mean()),
             "fixed-horizon test at the last look only": float(fixed[:, -1].mean())}
    n_total = looks.n_a + looks.n_b
    for label, tuning in tunings.items():
        with np.errstate(invalid="ignore"):
            rejected = sequential_p(est, var, n_total, tuning) < ALPHA
        rates[f"sequential at every look, {label}"] = float(rejected.any(axis=1).mean())
    return rates


def effect_summary(looks: Looks, tuning: float, days: int) -> dict[str, float]:
    est, var, dof = relative_effect(looks)
    n_total = looks.n_a + looks.n_b
    with np.errstate(invalid="ignore"):
        rejected = sequential_p(est, var, n_total, tuning) < ALPHA
        right = rejected & (est > 0)
        wrong = rejected & (est < 0)
        fixed_power = float(((welch_p(est, var, dof) < ALPHA) & (est > 0))[:, days - 1].mean())
    first_right, first_wrong = first_day(right), first_day(wrong)
    correct_first = first_right < first_wrong  # the first decision is the right one
    decision_day = np.where(correct_first, first_right, np.inf)
    return {
        "median_days": float(np.median(decision_day)),
        "decided_by_days": float((decision_day <= days).mean()),
        "decided_by_end": float(np.isfinite(decision_day).mean()),
        "wrong_first": float((first_wrong < first_right).mean()),
        "fixed_power_at_days": fixed_power,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=4000, help="simulated experiments per scenario")
    parser.add_argument("--days", type=int, default=30, help="daily looks in the A/A tests (and the plan)")
    parser.add_argument("--effect-days", type=int, default=180, help="daily looks in the A/B tests")
    parser.add_argument("--daily-units", type=int, default=5000, help="new units per arm per day")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.tests < 1 or args.days < 1 or args.effect_days < args.days or args.daily_units < 2:
        parser.error("need --tests ≥ 1, --days ≥ 1, --effect-days ≥ --days and --daily-units ≥ 2")
    rng = np.random.default_rng(args.seed)
    planned = 2.0 * args.daily_units * args.days
    tunings = {f"N* = {DEFAULT_TUNING:,.0f} (default)": DEFAULT_TUNING, f"N* = {planned:,.0f} (planned)": planned}
    t0 = time.perf_counter()

    print(f"{args.tests:,} simulated tests per scenario, {args.daily_units:,} units per arm per day, "
          f"two-sided α = {ALPHA}, relative effect, seed {args.seed}")
    aa: dict[float, dict[str, float]] = {}
    worst = 0.0
    for rate in (MICRO, MACRO):
        looks = simulate(rng, args.tests, args.days, args.daily_units, rate, rate)
        worst = max(worst, check_against_keystep(rng, looks, list(tunings.values())))
        aa[rate] = aa_rates(looks, tunings)

    print(f"\nA/A tests, {args.days} daily looks: share of tests that ever reject (false-positive rate ± 1 MC s.e.)")
    print(f"  {'procedure':<58}{'micro 20%':>16}{'macro 2%':>16}")
    findings = []
    for label in aa[MICRO]:
        cells = []
        for rate in (MICRO, MACRO):
            share = aa[rate][label]
            cells.append(f"{100 * share:5.2f}% ± {100 * mc_se(share, args.tests):.2f}")
            if label.startswith("sequential") and share > ALPHA + 2 * mc_se(ALPHA, args.tests):
                findings.append(f"FINDING: {label} at {rate:.0%}: false-positive rate {share:.2%} > α = {ALPHA}")
        print(f"  {label:<58}{cells[0]:>16}{cells[1]:>16}")

    print(f"\nA/B tests with a true +{LIFT:.0%} relative lift, {args.effect_days} daily looks, sequential test "
          f"(decision = first rejection, counted when its sign is right)")
    header = (f"  {'metric':<24}{'N*':>10}{'median days':>13}{f'by day {args.days}':>11}"
              f"{f'by day {args.effect_days}':>12}{'wrong sign':>12}{f'fixed-horizon power @{args.days}':>28}")
    print(header)
    for name, rate in (("micro 20% → 21%", MICRO), ("macro 2% → 2.1%", MACRO)):
        looks = simulate(rng, args.tests, args.effect_days, args.daily_units, rate, rate * (1 + LIFT))
        worst = max(worst, check_against_keystep(rng, looks, list(tunings.values())))
        for label, tuning in tunings.items():
            s = effect_summary(looks, tuning, args.days)
            median = f"{s['median_days']:.0f}" if math.isfinite(s["median_days"]) else f"> {args.effect_days}"
            print(f"  {name:<24}{label.split(' (')[0][5:]:>10}{median:>13}{s['decided_by_days']:>11.1%}"
                  f"{s['decided_by_end']:>12.1%}{s['wrong_first']:>12.2%}{s['fixed_power_at_days']:>28.1%}")

    print(f"\nvectorised numbers checked against keystep's compute_welch_test / compute_sequential_test on "
          f"{CHECKED_CELLS} random cells per scenario: largest relative difference {worst:.1e}")
    for finding in findings:
        print(finding)
    if not findings:
        print(f"sequential false-positive rates are within α = {ALPHA} (+2 MC s.e.) in every scenario")
    print(f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
