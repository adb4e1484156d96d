"""`keystep time-to-convert`, `keystep micro-macro` and `keystep suggest` with `--json`: whole bodies against a
small hand-built fixture whose answers are worked out by hand below.

Intervals come from second libraries: Wilson bounds from statsmodels' `proportion_confint`, the lift's Katz
interval and p-value from statsmodels' `Table2x2`, the value difference's Welch interval from statsmodels'
`CompareMeans`, and the Kaplan–Meier bands and quantile intervals from lifelines. With `--breakdown`, the
segment flags: the macro rate against the rest's by statsmodels' `proportions_ztest`, the time-to-convert
curve against the rest's by lifelines' `logrank_test`, both Holm-adjusted by statsmodels' `multipletests`."""

from __future__ import annotations

import json
import math
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import qth_survival_times
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from typer.testing import CliRunner

from conftest import EPOCH, event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app

CONFIG = """\
timezone: UTC
goals:
  view_item: {kind: micro, category: process_milestone, match: view_item}
  add_to_cart: {kind: micro, category: process_milestone, label: Added to cart, match: add_to_cart}
  newsletter: {kind: micro, category: secondary_action, match: newsletter_signup}
  survey: {kind: micro, category: secondary_action, match: survey}
  purchase: {kind: macro, type: revenue, match: purchase, value: {from: revenue, currency: EUR}}
"""

# Thirteen visitors; times in minutes after 2026-03-02 09:00 UTC (v2's first purchase 0.9 s later still).
#   v1 : view 0, cart 5, purchase 20 (50 EUR)
#   v2 : view 0, cart 10, purchase 70m00.9s (30), purchase 80 (20)          -> value 50
#   v3 : view 0, cart 2, newsletter 30 and purchase 30 (100)                -> the newsletter coincides
#   v4 : view 0, cart 3, purchase 8 (40)
#   v5 : cart 0, purchase 15 (60), survey 20                                 -> survey only after the macro
#   v6 : view 30                                        (no purchase)
#   v7 : view 0, page_view 120 = the last event, the end of observation
#   v8 : view 60, newsletter 61                         (no purchase)
#   v9 : newsletter 100                                 (no purchase)
#   v10: purchase 0 (25), view 5                                             -> macro before any micro
#   v11: page_view 0, purchase 10 (35)                                       -> macro without any micro
#   v12, v13: page_view 0 only
# Devices, for --breakdown device_type (every event of a visitor carries its device):
#   desktop v3 v4 v5 v10 · mobile v1 v2 v7 v9 v11 · tablet v6 v8 v12 v13
EUR = {"currency": "EUR"}
DEVICES = {"desktop": ["v3", "v4", "v5", "v10"], "mobile": ["v1", "v2", "v7", "v9", "v11"],
           "tablet": ["v6", "v8", "v12", "v13"]}
DEVICE = {v: device for device, visitors in DEVICES.items() for v in visitors}


def at(minutes: float, seconds: float = 0.0) -> Any:
    return EPOCH + timedelta(minutes=minutes, seconds=seconds)


def ev(visitor: str, event: str, ts: Any, revenue: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"visitor_id": visitor, "event": event, "ts": ts, "device_type": DEVICE[visitor]}
    if revenue is not None:
        row.update(revenue=revenue, **EUR)
    return row


ROWS = [
    ev("v1", "view_item", at(0)), ev("v1", "add_to_cart", at(5)), ev("v1", "purchase", at(20), 50.0),
    ev("v2", "view_item", at(0)), ev("v2", "add_to_cart", at(10)),
    ev("v2", "purchase", at(70, 0.9), 30.0), ev("v2", "purchase", at(80), 20.0),
    ev("v3", "view_item", at(0)), ev("v3", "add_to_cart", at(2)), ev("v3", "newsletter_signup", at(30)),
    ev("v3", "purchase", at(30), 100.0),
    ev("v4", "view_item", at(0)), ev("v4", "add_to_cart", at(3)), ev("v4", "purchase", at(8), 40.0),
    ev("v5", "add_to_cart", at(0)), ev("v5", "purchase", at(15), 60.0), ev("v5", "survey", at(20)),
    ev("v6", "view_item", at(30)),
    ev("v7", "view_item", at(0)), ev("v7", "page_view", at(120)),
    ev("v8", "view_item", at(60)), ev("v8", "newsletter_signup", at(61)),
    ev("v9", "newsletter_signup", at(100)),
    ev("v10", "purchase", at(0), 25.0), ev("v10", "view_item", at(5)),
    ev("v11", "page_view", at(0)), ev("v11", "purchase", at(10), 35.0),
    ev("v12", "page_view", at(0)),
    ev("v13", "page_view", at(0)),
]

# Macro value per visitor (0 for the six without a purchase)
VALUE = {"v1": 50.0, "v2": 50.0, "v3": 100.0, "v4": 40.0, "v5": 60.0, "v10": 25.0, "v11": 35.0}
VISITORS = [f"v{i}" for i in range(1, 14)]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    db, config = tmp_path / "site.duckdb", tmp_path / "keystep.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with DuckDBBackend(db) as store:
        store.insert_events(event_table(ROWS, project="shop"))
    return db, config


def run(site: tuple[Path, Path], command: str, *args: str) -> Any:
    db, config = site
    result = CliRunner().invoke(app, [command, "--db", str(db), "--config", str(config), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def approx(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-12)


# -- references from other libraries --------------------------------------------------------------


def wilson(x: int, n: int) -> dict[str, Any]:
    """A GroupRate: x macro units of n, with statsmodels' Wilson interval."""
    if n == 0:
        return {"units": 0, "macro_units": 0, "rate": None, "lower": None, "upper": None}
    lower, upper = proportion_confint(x, n, alpha=0.05, method="wilson")
    return {"units": n, "macro_units": x, "rate": approx(x / n), "lower": approx(lower), "upper": approx(upper)}


def katz(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """The lift with statsmodels' log (Katz) risk-ratio interval and p-value (no 0.5 added to empty cells)."""
    table = Table2x2(np.array([[x1, n1 - x1], [x2, n2 - x2]]), shift_zeros=False)
    lower, upper = table.riskratio_confint(alpha=0.05)
    return {"ratio": approx((x1 / n1) / (x2 / n2)), "lower": approx(float(lower)), "upper": approx(float(upper)),
            "p_value": approx(float(table.riskratio_pvalue()))}


def lift(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """The lift where it is defined, with `katz` where that is."""
    if n1 == 0 or n2 == 0 or x2 == 0:  # no rate on one side, or nothing to divide by
        return {"ratio": None, "lower": None, "upper": None, "p_value": None}
    if x1 == 0:  # a ratio of 0: its log interval has no upper bound, and there is no p-value
        return {"ratio": 0.0, "lower": 0.0, "upper": None, "p_value": None}
    if x1 == n1 and x2 == n2:  # everyone converted on both sides: the same rate with no variance, p = 1
        return {"ratio": 1.0, "lower": 1.0, "upper": 1.0, "p_value": 1.0}  # (statsmodels' p is nan here)
    return katz(x1, n1, x2, n2)


def welch(did: list[float], did_not: list[float]) -> dict[str, Any]:
    """Mean value per unit, did − did not, with statsmodels' normal interval for unequal variances (which
    needs two units on each side)."""
    if not did or not did_not:
        return {"difference": None, "lower": None, "upper": None}
    difference = approx(sum(did) / len(did) - sum(did_not) / len(did_not))
    if len(did) < 2 or len(did_not) < 2:
        return {"difference": difference, "lower": None, "upper": None}
    lower, upper = CompareMeans(DescrStatsW(did), DescrStatsW(did_not)).zconfint_diff(usevar="unequal")
    return {"difference": difference, "lower": approx(float(lower)), "upper": approx(float(upper))}


# -- micro-macro --------------------------------------------------------------------------------------

# Units 13, of which 7 bought (v1-v5, v10, v11), for 50+50+100+40+60+25+35 = 360 EUR.
# Who *did* each micro (first occurrence at or before the first purchase, or no purchase at all):
#   view_item  : v1 v2 v3 v4 v6 v7 v8 (7); v10 viewed only after buying (after_only 1)
#   add_to_cart: v1 v2 v3 v4 v5 (5), all of them bought
#   newsletter : v3 (at the very time of the purchase) v8 v9 (3)
#   survey     : nobody; v5 only after buying (after_only 1)
DID = {
    "view_item": ["v1", "v2", "v3", "v4", "v6", "v7", "v8"],
    "add_to_cart": ["v1", "v2", "v3", "v4", "v5"],
    "newsletter": ["v3", "v8", "v9"],
    "survey": [],
}
LABEL = {"view_item": "view_item", "add_to_cart": "Added to cart", "newsletter": "newsletter", "survey": "survey"}
CATEGORY = {"view_item": "process_milestone", "add_to_cart": "process_milestone",
            "newsletter": "secondary_action", "survey": "secondary_action"}
AFTER_ONLY = {"view_item": ["v10"], "add_to_cart": [], "newsletter": [], "survey": ["v5"]}
# Seconds from the micro's first occurrence to the first purchase, for each buyer it preceded
#   view_item  : v4 8 min, v1 20, v3 30, v2 70 min 0.9 s
#   add_to_cart: v4 5 min, v1 15, v5 15, v3 28, v2 60 min 0.9 s
#   newsletter : v3 0 s
LAGS = {
    "view_item": {"v4": 480.0, "v1": 1200.0, "v3": 1800.0, "v2": 4200.9},
    "add_to_cart": {"v4": 300.0, "v1": 900.0, "v5": 900.0, "v3": 1680.0, "v2": 3600.9},
    "newsletter": {"v3": 0.0},
    "survey": {},
}
GOALS = ("view_item", "add_to_cart", "newsletter", "survey")
TOTAL_UNITS, TOTAL_MACRO, TOTAL_VALUE = 13, 7, 360.0


def effect(goal: str, visitors: list[str] = VISITORS) -> dict[str, Any]:
    """The goal's effect among `visitors` (all of them, or one segment's)."""
    did = [v for v in DID[goal] if v in visitors]
    did_not = [v for v in visitors if v not in did]
    n, n1, n2 = len(visitors), len(did), len(did_not)
    x1, x2 = sum(v in VALUE for v in did), sum(v in VALUE for v in did_not)
    v1 = [VALUE.get(v, 0.0) for v in did]
    v2 = [VALUE.get(v, 0.0) for v in did_not]
    lags = [lag for v, lag in LAGS[goal].items() if v in visitors]
    return {
        "goal": goal,
        "label": LABEL[goal],
        "category": CATEGORY[goal],
        "frequency": approx(n1 / n),
        "did": wilson(x1, n1),
        "did_not": wilson(x2, n2),
        "lift": lift(x1, n1, x2, n2),
        "preceded_share": approx(x1 / (x1 + x2)) if x1 + x2 else None,
        "after_only": sum(v in visitors for v in AFTER_ONLY[goal]),
        "lag_median_s": approx(statistics.median(lags)) if lags else None,
        "value_per_unit": approx(sum(v1) / n1) if n1 else None,
        "value_per_unit_without": approx(sum(v2) / n2) if n2 else None,
        "incremental_value": welch(v1, v2),
        "value_per_macro_unit": approx(sum(v1) / x1) if x1 else None,
    }


def test_effects_by_hand() -> None:
    """The numbers `effect` derives from DID and VALUE, spelled out for the two process milestones."""
    cart, view = effect("add_to_cart"), effect("view_item")
    assert (cart["did"]["units"], cart["did"]["macro_units"]) == (5, 5)
    assert (cart["did_not"]["units"], cart["did_not"]["macro_units"]) == (8, 2)  # v10 and v11 bought without
    assert cart["lift"]["ratio"] == 4.0  # (5/5) / (2/8)
    assert cart["value_per_unit"] == 60.0 and cart["value_per_unit_without"] == 7.5  # 300/5, (25+35)/8
    assert cart["incremental_value"]["difference"] == 52.5
    assert cart["value_per_macro_unit"] == 60.0
    assert view["lift"]["ratio"] == 8 / 7  # (4/7) / (3/6): v5, v10, v11 bought without viewing first
    # the median lags: (1200 + 1800) / 2 for the view, 15 min for the cart, 0 s for the newsletter
    assert (view["lag_median_s"], cart["lag_median_s"], effect("newsletter")["lag_median_s"]) == (1500, 900, 0)
    assert view["value_per_unit"] == 240 / 7 and view["value_per_unit_without"] == 20.0  # 120 / 6
    # the Katz interval of the cart lift, by hand: se = sqrt(1/5 − 1/5 + 1/2 − 1/8)
    se = math.sqrt(0.375)
    assert cart["lift"]["lower"] == pytest.approx(4 * math.exp(-1.959964 * se), rel=1e-6)
    assert 4 * math.exp(-1.959964 * se) > 1  # a significant lift, which `suggest` relies on


# what a group that is not a segment (all units) has in the fields comparing a segment with the rest
NOT_A_SEGMENT = {"rest_rate": None, "p_value": None, "adjusted_p": None, "significant": False, "direction": None}


def mm_report(**query: Any) -> dict[str, Any]:
    return {
        "macro": "purchase",
        "macro_label": "purchase",
        "currency": "EUR",
        "unit": "visitor",
        "project": None,
        "start": None,
        "end": None,
        "breakdown": None,
        **query,
        "overall": {
            "segment": None,
            "units": TOTAL_UNITS,
            "macro_units": TOTAL_MACRO,
            "macro_rate": wilson(TOTAL_MACRO, TOTAL_UNITS),
            "value_sum": TOTAL_VALUE,
            "value_per_unit": approx(TOTAL_VALUE / TOTAL_UNITS),
            "micro": [effect(g) for g in GOALS],
            **NOT_A_SEGMENT,
        },
        "segments": [],
        "alpha": 0.05,
    }


def test_micro_macro_json(site: tuple[Path, Path]) -> None:
    assert run(site, "micro-macro") == mm_report()
    # naming the macro (the only one) and the project gives the same numbers
    assert run(site, "micro-macro", "--macro", "purchase", "--project", "shop") == mm_report(project="shop")


def test_micro_macro_by_device_json(site: tuple[Path, Path]) -> None:
    # Each device's macro rate against all other visitors' (7 buyers of 13), the pooled two-proportion test:
    #   desktop 4 of 4 (v3 v4 v5 v10) vs 3 of 9: p = 0.026, below 5% alone but not after Holm (× 2 = 0.052);
    #   mobile 3 of 5 (v1 v2 v11) vs 4 of 8: p = 0.72;
    #   tablet 0 of 4 vs 7 of 9: p = 0.0094, the smallest, × 3 = 0.028: flagged, lower.
    counts = {device: (sum(v in VALUE for v in visitors), len(visitors)) for device, visitors in DEVICES.items()}
    assert counts == {"desktop": (4, 4), "mobile": (3, 5), "tablet": (0, 4)}
    p = {d: float(proportions_ztest([x, TOTAL_MACRO - x], [n, TOTAL_UNITS - n])[1]) for d, (x, n) in counts.items()}
    adjusted = dict(zip(p, (float(a) for a in multipletests(list(p.values()), method="holm")[1]), strict=True))
    direction = {"desktop": "higher", "mobile": "higher", "tablet": "lower"}

    def segment(device: str) -> dict[str, Any]:
        visitors = DEVICES[device]
        (x, n), value = counts[device], sum(VALUE.get(v, 0.0) for v in visitors)
        return {
            "segment": device,
            "units": n,
            "macro_units": x,
            "macro_rate": wilson(x, n),
            "value_sum": approx(value),
            "value_per_unit": approx(value / n),
            "micro": [effect(g, visitors) for g in GOALS],
            "rest_rate": wilson(TOTAL_MACRO - x, TOTAL_UNITS - n),
            "p_value": approx(p[device]),
            "adjusted_p": approx(adjusted[device]),
            "significant": adjusted[device] < 0.05,
            "direction": direction[device],
        }

    segments = [segment(d) for d in ("desktop", "mobile", "tablet")]  # by name
    assert run(site, "micro-macro", "--breakdown", "device_type") == {
        **mm_report(breakdown="device_type"), "segments": segments
    }
    # the references are not vacuous: Holm is what keeps desktop unflagged
    assert [s["significant"] for s in segments] == [False, False, True] and p["desktop"] < 0.05


# -- suggest --------------------------------------------------------------------------------------

# Score = preceded_share − frequency (over 91 = 7·13):
#   add_to_cart 5/7 − 5/13 = 30/91, view_item 4/7 − 7/13 = 3/91, newsletter 1/7 − 3/13 = −8/91, survey 0 − 0.
# Only add_to_cart's lift interval lies above 1. Fewer than five are significant, so the rest fill in by
# score, except survey, which no visitor did before buying: it is the one not recommended.
RULE = (
    "score = share of macro units the micro preceded − share of all units that did it "
    "(= frequency × (rate with it − overall rate) ÷ overall rate); "
    "significant = lift > 1 at 95%; recommended = the significant micros by score (at most 10), "
    "filled up to 5 with the best of the rest"
)
# The written reasons, numbers rounded by hand:
#   add_to_cart lift 4 [4·e^(−1.96·0.612) = 1.20, 4·e^(1.96·0.612) = 13.3], 38% of visitors, precedes 71%,
#     median 900 s = 15 min;
#   view_item lift 8/7 = 1.14, se = sqrt(1/4 − 1/7 + 1/3 − 1/6) = 0.523: [0.41, 3.19], p = 2·Φ(−0.255) = 0.80,
#     54% of visitors, precedes 57%, median 1500 s = 25 min;
#   newsletter lift 5/9 = 0.56, se = sqrt(1 − 1/3 + 1/6 − 1/10) = 0.856: [0.10, 2.98], p = 2·Φ(−0.686) = 0.49,
#     23% of visitors, precedes 14%, median 0 s;
#   survey: no lift (nobody did it before buying), 0% of visitors, precedes 0%.
REASON = {
    "add_to_cart": "strong lift 4.0× [1.2, 13.3], frequent (38% of visitors), "
    "precedes 71% of purchase conversions, median 15 min before",
    "view_item": "weak lift 1.1× [0.4, 3.2], frequent (54% of visitors), precedes 57% of purchase conversions, "
    "median 25 min before; not a significant positive lift (p = 0.8)",
    "newsletter": "negative lift 0.6× [0.1, 3.0], frequent (23% of visitors), "
    "precedes 14% of purchase conversions, median 0 s before; not a significant positive lift (p = 0.49)",
    "survey": "rare (0% of visitors), precedes 0% of purchase conversions; not a significant positive lift",
}
SCORE = {"add_to_cart": 30 / 91, "view_item": 3 / 91, "newsletter": -8 / 91, "survey": 0.0}


def suggestion(rank: int, goal: str, *, recommended: bool) -> dict[str, Any]:
    e = effect(goal)
    return {
        "rank": rank,
        "goal": goal,
        "label": LABEL[goal],
        "score": approx(SCORE[goal]),
        "significant": goal == "add_to_cart",
        "recommended": recommended,
        "reason": REASON[goal],
        "frequency": e["frequency"],
        "lift": e["lift"]["ratio"],
        "lift_lower": e["lift"]["lower"],
        "lift_upper": e["lift"]["upper"],
        "p_value": e["lift"]["p_value"],
        "preceded_share": e["preceded_share"],
        "lag_median_s": e["lag_median_s"],
        "value_per_unit": e["value_per_unit"],
        "incremental_value": e["incremental_value"]["difference"],
    }


def test_suggest_json(site: tuple[Path, Path]) -> None:
    assert run(site, "suggest") == {
        "macro": "purchase",
        "macro_label": "purchase",
        "unit": "visitor",
        "project": None,
        "start": None,
        "end": None,
        "units": TOTAL_UNITS,
        "macro_units": TOTAL_MACRO,
        "rule": RULE,
        "recommended": [
            suggestion(1, "add_to_cart", recommended=True),  # the significant one first
            suggestion(2, "view_item", recommended=True),  # then the rest by score
            suggestion(3, "newsletter", recommended=True),
        ],
        "others": [suggestion(4, "survey", recommended=False)],
    }


# -- time-to-convert ---------------------------------------------------------------------------------


def km_reference(durations: list[float], observed: list[bool]) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(durations, observed)


def km_quantile(kmf: KaplanMeierFitter, q: float, value: float | None) -> dict[str, Any]:
    """The q-quantile of the time to convert: the value worked out by hand, its interval from the times
    at which lifelines' lower and upper bands first reach 1 − q (None where a band never does; the lower
    bound can exist when the estimate itself does not)."""
    ci = qth_survival_times(1 - q, kmf.confidence_interval_)

    def finite(column: str) -> float | None:
        t = float(ci.filter(like=column).iloc[0, 0])
        return t if math.isfinite(t) else None

    return {"q": q, "seconds": value, "lower": finite("lower"), "upper": finite("upper")}


def km_curve(kmf: KaplanMeierFitter, steps: list[tuple[float, int, int, int, float]]) -> list[dict[str, Any]]:
    """Curve points from (seconds, at risk, converted, censored, S) worked out by hand; the band is
    lifelines' on the share converted, 1 − S (so its lower bound is 1 − the upper band of S)."""
    ci = kmf.confidence_interval_
    lo, hi = ci.filter(like="lower").iloc[:, 0], ci.filter(like="upper").iloc[:, 0]
    out = []
    for t, n, d, c, s in steps:
        defined = 0 < s < 1
        out.append({
            "seconds": t, "at_risk": n, "events": d, "censored": c, "converted": approx(1 - s),
            "lower": approx(1 - float(hi.loc[t])) if defined else None,
            "upper": approx(1 - float(lo.loc[t])) if defined else None,
        })
    return out


def milestones(shares: list[float]) -> list[dict[str, Any]]:
    seconds = (60, 600, 3600, 86400, 7 * 86400, 30 * 86400)
    return [{"seconds": float(s), "converted": approx(c)} for s, c in zip(seconds, shares, strict=True)]


# what the overall curve (not a segment) has in the fields comparing a segment's curve with the rest's
NOT_A_TTC_SEGMENT = {"expected": None, "p_value": None, "adjusted_p": None, "significant": False, "direction": None}


def km_group(
    segment: str | None,
    clock: list[tuple[float, bool]],
    *,
    macro_first: int,
    macro_only: int,
    steps: list[tuple[float, int, int, int, float]],
    quantiles: list[float | None],
    converted: list[float | None],
    shares: list[float],
) -> dict[str, Any]:
    """A curve's whole body: from the (duration, converted) of each unit that started the clock (for
    lifelines' bands) and the numbers worked out by hand: the steps (seconds, at risk, converted, censored,
    S), the 25/50/75% times, the plain quantiles of the converted durations, the shares by the milestones."""
    observed = [e for _, e in clock]
    kmf = km_reference([d for d, _ in clock], observed)
    return {
        "segment": segment,
        "started": len(clock),
        "converted": sum(observed),
        "censored": len(clock) - sum(observed),
        "macro_first": macro_first,
        "macro_only": macro_only,
        "quantiles": [km_quantile(kmf, q, v) for q, v in zip((0.25, 0.5, 0.75), quantiles, strict=True)],
        "converted_quantiles": [{"q": q, "seconds": v, "lower": None, "upper": None}
                                for q, v in zip((0.25, 0.5, 0.75), converted, strict=True)],
        "milestones": milestones(shares),
        "curve": km_curve(kmf, steps),
        **NOT_A_TTC_SEGMENT,
    }


def ttc_report(start_goals: list[str], start_label: str, overall: dict[str, Any]) -> dict[str, Any]:
    return {
        "start_goals": start_goals,
        "end_goals": ["purchase"],
        "start_label": start_label,
        "end_label": "any macro conversion",
        "unit": "visitor",
        "project": None,
        "start": None,
        "end": None,
        "observation_end": (EPOCH + timedelta(minutes=120)).isoformat(),  # v7's page_view
        "breakdown": None,
        "overall": overall,
        "segments": [],
        "alpha": 0.05,
    }


# Clock from the first micro of any kind to the first purchase, in whole seconds:
#   converted: v4 8 min = 480, v5 900, v1 1200, v3 1800, v2 70 min 0.9 s = 4200 (floored)
#   censored at 11:00: v9 (newsletter at 100 min) 1200, v8 3600, v6 5400, v7 7200
#   v10 bought before any micro (macro_first), v11 bought without any (macro_only); v12, v13 neither.
CLOCK = {"v4": (480.0, True), "v5": (900.0, True), "v1": (1200.0, True), "v3": (1800.0, True),
         "v2": (4200.0, True), "v9": (1200.0, False), "v8": (3600.0, False), "v6": (5400.0, False),
         "v7": (7200.0, False)}
ANY_MICRO = ["view_item", "add_to_cart", "newsletter", "survey"]


def any_micro_overall() -> dict[str, Any]:
    # Kaplan–Meier by hand (a censoring at 1200 s is still at risk at 1200 s):
    #   480: 9 at risk, S = 8/9; 900: 8, S = 7/9; 1200: 7 (1 converted, 1 censored), S = 7/9·6/7 = 2/3;
    #   1800: 5, S = 2/3·4/5 = 8/15; 3600: 4, censoring only; 4200: 3, S = 8/15·2/3 = 16/45; then censorings.
    s = [8 / 9, 7 / 9, 2 / 3, 8 / 15, 8 / 15, 16 / 45, 16 / 45, 16 / 45]
    steps = [(480.0, 9, 1, 0, s[0]), (900.0, 8, 1, 0, s[1]), (1200.0, 7, 1, 1, s[2]), (1800.0, 5, 1, 0, s[3]),
             (3600.0, 4, 0, 1, s[4]), (4200.0, 3, 1, 0, s[5]), (5400.0, 2, 0, 1, s[6]), (7200.0, 1, 0, 1, s[7])]
    return km_group(
        None, list(CLOCK.values()), macro_first=1, macro_only=1, steps=steps,
        # 25% converted once S ≤ 0.75: at 1200 (S = 2/3); 50%: S ≤ 0.5 first at 4200 (8/15 > 0.5 before);
        # 75% needs S ≤ 0.25, which the curve (ending at 16/45) never reaches
        quantiles=[1200.0, 4200.0, None],
        # plain quantiles of 480, 900, 1200, 1800, 4200: the 2nd, 3rd and 4th of five (ceil(q·5))
        converted=[900.0, 1200.0, 1800.0],
        # converted within 1 min: 0; 10 min: 1 − 8/9; 1 h: 1 − 8/15; 1 d and after: 1 − 16/45
        shares=[0.0, 1 / 9, 7 / 15, 29 / 45, 29 / 45, 29 / 45],
    )


def test_time_to_convert_json(site: tuple[Path, Path]) -> None:
    overall = any_micro_overall()
    assert (overall["started"], overall["converted"], overall["censored"]) == (9, 5, 4)
    assert run(site, "time-to-convert") == ttc_report(ANY_MICRO, "any micro conversion", overall)
    # the references are not vacuous: the 25% interval is bounded on both sides, the 50% one below only, and
    # the 75% estimate is missing but its lower bound is not (the lower band gets below 0.25)
    q25, q50, q75 = overall["quantiles"]
    assert None not in (q25["lower"], q25["upper"]) and q50["lower"] is not None and q50["upper"] is None
    assert q75["lower"] is not None and q75["upper"] is None


def test_time_to_convert_from_one_goal_json(site: tuple[Path, Path]) -> None:
    # From the first add_to_cart: v4 5 min = 300, v1 900, v5 900, v3 28 min = 1680, v2 60 min 0.9 s = 3600.
    # All five bought; v10 and v11 bought without a cart (macro_only 2); nobody is censored.
    #   300: 5 at risk, S = 4/5; 900: 4 at risk, 2 converted, S = 2/5; 1680: S = 1/5; 3600: S = 0 (no band)
    steps = [(300.0, 5, 1, 0, 4 / 5), (900.0, 4, 2, 0, 2 / 5), (1680.0, 2, 1, 0, 1 / 5), (3600.0, 1, 1, 0, 0.0)]
    overall = km_group(
        None, [(300.0, True), (900.0, True), (900.0, True), (1680.0, True), (3600.0, True)],
        macro_first=0, macro_only=2, steps=steps,
        quantiles=[900.0, 900.0, 1680.0],  # S ≤ 0.75 and S ≤ 0.5 first at 900; S ≤ 0.25 first at 1680
        converted=[900.0, 900.0, 1680.0],
        shares=[0.0, 1 / 5, 1.0, 1.0, 1.0, 1.0],
    )
    assert run(site, "time-to-convert", "--from-goal", "add_to_cart", "--to-goal", "purchase") == {
        **ttc_report(["add_to_cart"], "Added to cart", overall), "end_label": "purchase"
    }


def test_time_to_convert_by_device_json(site: tuple[Path, Path]) -> None:
    clock = {device: [CLOCK[v] for v in visitors if v in CLOCK] for device, visitors in DEVICES.items()}
    # desktop: v4 480, v5 900, v3 1800, all converted; v10 bought first (macro_first).
    #   480: 3 at risk, S = 2/3; 900: 2, S = 1/3; 1800: 1, S = 0. By 25%: 480, 50%: 900, 75%: 1800.
    desktop = km_group(
        "desktop", clock["desktop"], macro_first=1, macro_only=0,
        steps=[(480.0, 3, 1, 0, 2 / 3), (900.0, 2, 1, 0, 1 / 3), (1800.0, 1, 1, 0, 0.0)],
        quantiles=[480.0, 900.0, 1800.0], converted=[480.0, 900.0, 1800.0],
        shares=[0.0, 1 / 3, 1.0, 1.0, 1.0, 1.0],
    )
    # mobile: v1 converted at 1200, v9 censored at 1200, v2 converted at 4200, v7 censored at 7200; v11 macro
    # only. 1200: 4 at risk, S = 3/4; 4200: 2 at risk (v2, v7), S = 3/8; 7200: censoring. S ≤ 0.75 at 1200,
    # S ≤ 0.5 at 4200, never S ≤ 0.25; plain quantiles of 1200, 4200: the 1st, 1st and 2nd of two.
    mobile = km_group(
        "mobile", clock["mobile"], macro_first=0, macro_only=1,
        steps=[(1200.0, 4, 1, 1, 3 / 4), (4200.0, 2, 1, 0, 3 / 8), (7200.0, 1, 0, 1, 3 / 8)],
        quantiles=[1200.0, 4200.0, None], converted=[1200.0, 1200.0, 4200.0],
        shares=[0.0, 0.0, 1 / 4, 5 / 8, 5 / 8, 5 / 8],
    )
    # tablet: v8 and v6 censored at 3600 and 5400 (v12 and v13 never started the clock): S = 1 throughout.
    tablet = km_group(
        "tablet", clock["tablet"], macro_first=0, macro_only=0,
        steps=[(3600.0, 2, 0, 1, 1.0), (5400.0, 1, 0, 1, 1.0)],
        quantiles=[None, None, None], converted=[None, None, None], shares=[0.0] * 6,
    )
    # Each curve against the rest pooled, the log-rank test. Expected conversions at the rest's pace, summed
    # over the five conversion times (480, 900, 1200, 1800, 4200 with 9, 8, 7, 5, 3 at risk) of the share of
    # those at risk that are the segment's:
    #   desktop 3/9 + 2/8 + 1/7 + 1/5 + 0/3 = 389/420 ≈ 0.93 for 3 conversions: faster;
    #   mobile 4/9 + 4/8 + 4/7 + 2/5 + 2/3 = 1627/630 ≈ 2.58 for 2: slower;
    #   tablet 2/9 + 2/8 + 2/7 + 2/5 + 1/3 = 1879/1260 ≈ 1.49 for 0: slower.
    expected = {"desktop": 389 / 420, "mobile": 1627 / 630, "tablet": 1879 / 1260}
    assert sum(expected.values()) == pytest.approx(5)  # the five conversions, shared out
    p = {}
    for device, visitors in DEVICES.items():
        inside = clock[device]
        rest = [c for v, c in CLOCK.items() if v not in visitors]
        p[device] = float(logrank_test([d for d, _ in inside], [d for d, _ in rest], [e for _, e in inside],
                                       [e for _, e in rest]).p_value)
    # desktop p = 0.013, × 3 = 0.038: flagged; tablet 0.14 × 2; mobile 0.60
    adjusted = dict(zip(p, (float(a) for a in multipletests(list(p.values()), method="holm")[1]), strict=True))
    direction = {"desktop": "faster", "mobile": "slower", "tablet": "slower"}
    segments = [
        {**group, "expected": approx(expected[d]), "p_value": approx(p[d]), "adjusted_p": approx(adjusted[d]),
         "significant": adjusted[d] < 0.05, "direction": direction[d]}
        for d, group in (("desktop", desktop), ("mobile", mobile), ("tablet", tablet))
    ]
    assert run(site, "time-to-convert", "--breakdown", "device_type") == {
        **ttc_report(ANY_MICRO, "any micro conversion", any_micro_overall()), "breakdown": "device_type",
        "segments": segments,
    }
    assert [s["significant"] for s in segments] == [True, False, False]  # not vacuous


# -- for people, and errors -----------------------------------------------------------------------------


def human(site: tuple[Path, Path], *args: str) -> str:
    db, config = site
    result = CliRunner().invoke(app, [*args, "--db", str(db), "--config", str(config)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tables_for_people(site: tuple[Path, Path]) -> None:
    ttc = human(site, "time-to-convert", "--curve")
    # 25% by 1200 s = 20 min, median 4200 s = 1.2 h; 46.7% (7/15) converted within 1 h; the curve's steps
    for text in ("Time to convert", "any micro conversion → any macro conversion", "20 min", "1.2 h", "46.7%",
                 "64.4%", "Kaplan–Meier curve", "11.1%"):
        assert text in ttc, text
    mm = human(site, "micro-macro")
    # 7 of 13 bought (53.8%); 5 visitors (38.5%) added to cart, all bought (100.0%), lift 4.00×, lag 15 min
    for text in ("Micro → macro", "7 of 13 converted", "53.8%", "Added to cart", "5 (38.5%)", "100.0%",
                 "4.00×", "15 min", "25 min", "60.00", "52.50"):
        assert text in mm, text
    tips = human(site, "suggest")
    # score 30/91 = 0.330; survey listed as not recommended with score 0
    for text in ("Micro conversions worth tracking", "Added to cart", "0.330", "not recommended: survey (0.000)",
                 "significant = lift > 1 at 95%"):
        assert text in tips, text


def row_of(text: str, segment: str) -> str:
    """The table row that starts with `segment`."""
    return next(line for line in text.splitlines() if line.strip().startswith(segment + " "))


def test_flagged_segments_for_people(site: tuple[Path, Path]) -> None:
    # the numbers of test_time_to_convert_by_device_json: only desktop is flagged, as converting faster;
    # 389/420 = 0.93 conversions expected, raw p 0.0127, adjusted 0.0380
    ttc = human(site, "time-to-convert", "--breakdown", "device_type")
    assert "▲ faster" in row_of(ttc, "desktop") and "0.93" in row_of(ttc, "desktop")
    assert "0.0127" in row_of(ttc, "desktop") and "0.0380" in row_of(ttc, "desktop")
    assert "▲" not in row_of(ttc, "mobile") + row_of(ttc, "tablet") and "▼" not in ttc.split("Segments flagged")[0]
    assert "log-rank test" in ttc and "Holm" in ttc
    # and of test_micro_macro_by_device_json: tablet (0 of 4 bought, the rest 77.8%) flagged lower; desktop,
    # p 0.0261 alone, not after Holm (0.0521)
    mm = human(site, "micro-macro", "--breakdown", "device_type")
    summary = mm.split("purchase rate by device_type")[1].split("Segments flagged")[0]
    assert "▼ lower" in row_of(summary, "tablet") and "77.8%" in row_of(summary, "tablet")
    assert "0.0521" in row_of(summary, "desktop") and "▲" not in summary
    assert "two-proportion test" in mm and "device_type = tablet (4 units)" in mm


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("micro-macro", "--macro", "nope"), "no goal named 'nope'"),
        (("suggest", "--macro", "nope"), "no goal named 'nope'"),
        (("micro-macro", "--macro", "add_to_cart"), "'add_to_cart' is a micro goal; expected a macro goal"),
        (("time-to-convert", "--from-goal", "nope"), "no goal named 'nope'"),
        (("time-to-convert", "--to-goal", "nope"), "no goal named 'nope'"),
    ],
)
def test_unknown_goal_is_an_error(site: tuple[Path, Path], args: tuple[str, ...], message: str) -> None:
    db, config = site
    result = CliRunner().invoke(app, [*args, "--db", str(db), "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["time-to-convert", "micro-macro", "suggest"])
def test_missing_database_is_an_error(site: tuple[Path, Path], tmp_path: Path, command: str) -> None:
    _, config = site
    missing = tmp_path / "nowhere.duckdb"
    result = CliRunner().invoke(app, [command, "--db", str(missing), "--config", str(config), "--json"])
    assert result.exit_code == 2, result.output
    assert "no database at" in result.stderr and "nowhere.duckdb" in result.stderr
    assert result.stdout == ""
    assert not missing.exists()  # the check does not create an empty store
