"""keystep's statistics engine against the oracle cases drawn from GrowthBook's gbstats test suite.

Every case in ``tests/oracles/stats_cases.json`` is either run (``RUNNERS``) or listed in
``UNSUPPORTED`` with the reason; ``test_every_case_is_accounted_for`` keeps the two lists complete.
A runner turns the case's inputs into keystep calls and returns outputs shaped like ``expected``;
numbers are compared with the case's tolerance, ``"inf"``/``"-inf"`` strings as infinities, ``None`` exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from conftest import ORACLES
from keystep.stats.bayesian import GaussianPrior, compute_bayesian_test, expected_loss
from keystep.stats.cuped import CovariateRatioStats, CovariateStats
from keystep.stats.effects import ArmStatistic, compute_effect, delta_method_variance
from keystep.stats.frequentist import Alternative, compute_welch_test
from keystep.stats.multiplicity import adjust_p_values, adjusted_confidence_interval
from keystep.stats.power import (
    MetricDesign,
    compute_mde,
    compute_mid_experiment_power,
    compute_power,
    compute_power_curve,
    mid_experiment_power,
    periods_needed,
)
from keystep.stats.quantiles import QuantileStats
from keystep.stats.sequential import compute_sequential_test
from keystep.stats.srm import compute_srm
from keystep.stats.sufficient import MeanStats, MetricStats, ProportionStats

ORACLE = ORACLES / "stats_cases.json"
CASES: dict[str, dict[str, Any]] = {c["id"]: c for c in json.loads(ORACLE.read_text())["cases"]}

Outputs = dict[str, Any]


# --- building keystep inputs from the oracle's conventions -----------------------------------------


def metric(spec: dict[str, Any]) -> MetricStats:
    if spec["type"] == "mean":
        return MeanStats(spec["n"], spec["sum"], spec["sum_squares"])
    if spec["type"] == "proportion":
        return ProportionStats(spec["n"], spec["sum"])
    raise ValueError(spec["type"])


def arm(spec: dict[str, Any]) -> ArmStatistic:
    kind = spec["type"]
    if kind in ("mean", "proportion"):
        return metric(spec)
    if kind in ("cuped_mean", "cuped_proportion"):
        return CovariateStats(metric(spec["post"]), metric(spec["pre"]), spec["post_pre_sum_of_products"])
    if kind == "cuped_ratio":
        products = {k: v for k, v in spec.items() if k.endswith("_sum_of_products")}
        return CovariateRatioStats(
            metric(spec["m_post"]),
            metric(spec["d_post"]),
            metric(spec["m_pre"]),
            metric(spec["d_pre"]),
            **products,
        )
    if kind == "quantile":
        fields = ("n", "n_star", "nu", "quantile_hat", "quantile_lower", "quantile_upper")
        return QuantileStats(**{k: spec[k] for k in fields})
    raise ValueError(kind)


def prior(spec: dict[str, Any]) -> GaussianPrior:
    if not spec["proper"]:
        return GaussianPrior()
    return GaussianPrior(spec["mean"], spec["variance"], proper=True)


def alternative(method: str) -> Alternative:
    if method.endswith("_greater"):
        return "greater"
    if method.endswith("_lesser"):
        return "less"
    return "two-sided"


# --- runners ---------------------------------------------------------------------------------------


def run_welch(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    r = compute_welch_test(
        arm(i["control"]),
        arm(i["treatment"]),
        difference_type=i["difference_type"],
        alpha=i["alpha"],
        alternative=alternative(case["method"]),
    )
    return {"point_estimate": r.point_estimate, "ci": list(r.ci), "se": r.se, "p_value": r.p_value}


def run_sequential(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    r = compute_sequential_test(
        arm(i["control"]),
        arm(i["treatment"]),
        difference_type=i["difference_type"],
        alpha=i["alpha"],
        tuning=i["sequential_tuning_parameter"],
        alternative=alternative(case["method"]),
    )
    return {"point_estimate": r.point_estimate, "ci": list(r.ci), "se": r.se, "p_value": r.p_value}


def run_bayes(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    r = compute_bayesian_test(
        arm(i["control"]),
        arm(i["treatment"]),
        difference_type=i["difference_type"],
        prior=prior(i["prior"]),
        alpha=i["alpha"],
    )
    return {
        "point_estimate": r.point_estimate,
        "ci": list(r.ci),
        "se": r.se,
        "chance_to_win": r.chance_to_win,
        "risk": list(r.risk),
    }


def run_bayes_quantile(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    out: Outputs = {}
    for name, variant in i["variants"].items():
        r = compute_bayesian_test(
            arm(i["control"]),
            arm(i["treatment"]),
            difference_type=variant["difference_type"],
            prior=prior(variant["prior"]),
            alpha=i["alpha"],
        )
        out[name] = {"point_estimate": r.point_estimate, "ci": list(r.ci)}
    return out


def run_risk(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    return {"risk": list(expected_loss(i["posterior_mean"], i["posterior_sd"]))}


def run_mid_experiment(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    effect = compute_effect(arm(i["control"]), arm(i["treatment"]), difference_type=i["difference_type"])
    common: dict[str, Any] = {
        "alpha": i["alpha"],
        "target_power": i["target_power"],
        "num_goal_metrics": i["num_goal_metrics"],
        "num_variations": i["num_variations"],
    }
    bp = i["bayes_prior"]
    bayes_prior = GaussianPrior(bp["mean"], bp["variance"], proper=bp["proper"])
    designs: dict[str, dict[str, Any]] = {
        "frequentist": {},
        "sequential": {"sequential_tuning": i["sequential_tuning_parameter"]},
        "bayesian": {"prior": bayes_prior},
    }
    out: Outputs = {"sigmahat2_delta": effect.variance}
    powers = []
    for name, extra in designs.items():
        r = compute_mid_experiment_power(effect.variance, effect.n_total, i["target_mde"], **common, **extra)
        out[f"scaling_factor_{name}"] = r.scaling_factor
        assert r.scaling_factor is not None
        powers.append(
            mid_experiment_power(
                r.scaling_factor,
                effect_variance=effect.variance,
                n_pairwise=effect.n_total,
                target_mde=i["target_mde"],
                alpha=i["alpha"],
                num_tests=(i["num_variations"] - 1) * i["num_goal_metrics"],
                **extra,
            )
        )
    # Every design's power at its scaling factor is the target; report the farthest from it.
    out["power_at_scaling_factor"] = max(powers, key=lambda p: abs(p - i["target_power"]))
    return out


def run_delta_variance(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    args = (i["varA"], i["meanA"], i["nA"], i["varB"], i["meanB"], i["nB"])
    return {
        "absolute": delta_method_variance(*args, relative=False),
        "relative": delta_method_variance(*args, relative=True),
    }


def run_power_and_mde(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    m = i["metric"]
    design = MetricDesign(m["mean"], m["standard_deviation_sq"], m["effect_size"])
    tuning = i["sequential_tuning_parameter"] or None
    return {
        "power": compute_power(
            design,
            i["n_total"],
            i["n_variations"],
            alpha=i["alpha"],
            two_tailed=i["two_tailed"],
            sequential_tuning=tuning,
        ),
        "mde": compute_mde(
            design,
            i["n_total"],
            i["n_variations"],
            power=i["target_power_for_mde"],
            alpha=i["alpha"],
            sequential_tuning=tuning,
        ),
    }


def run_power_weeks(case: dict[str, Any]) -> Outputs:
    i = case["inputs"]
    designs = {}
    for name, m in i["metrics"].items():
        if m["type"] == "binomial":
            designs[name] = MetricDesign.conversion(m["conversionRate"], m["effectSize"])
        else:
            designs[name] = MetricDesign(m["mean"], m["standardDeviation_sq"], m["effectSize"])
    out: Outputs = {}
    designs_by_label = (
        ("frequentist", None, "frequentist_power_interleaved_ctr_revenue_by_week"),
        ("sequential5000", 5000.0, "sequential5000_power_interleaved"),
    )
    for label, tuning, power_key in designs_by_label:
        curves = {
            name: compute_power_curve(
                d,
                i["usersPerWeek"],
                i["nWeeks"],
                i["nVariations"],
                alpha=i["alpha"],
                target_power=i["targetPower"],
                sequential_tuning=tuning,
            )
            for name, d in designs.items()
        }
        weeks = list(zip(*curves.values(), strict=True))
        out[power_key] = [p.power for week in weeks for p in week]
        out[f"{label}_mde_interleaved"] = [p.mde for week in weeks for p in week]
        if tuning is None:
            out["frequentist_weeks_to_80pct"] = {
                name: periods_needed(curve, i["targetPower"]) for name, curve in curves.items()
            }
    return out


def run_srm(case: dict[str, Any]) -> Outputs:
    return {"p_values": [compute_srm(c["users"], c["weights"]).p_value for c in case["inputs"]["cases"]]}


def run_holm(case: dict[str, Any]) -> Outputs:
    return {"adjusted_in_input_order": adjust_p_values(case["inputs"]["p_values"], "holm")}


def run_bh(case: dict[str, Any]) -> Outputs:
    return {"adjusted_in_input_order": adjust_p_values(case["inputs"]["p_values"], "benjamini-hochberg")}


def run_adjusted_ci(case: dict[str, Any]) -> Outputs:
    cis = [
        list(adjusted_confidence_interval(c["lift"], c["adjusted_p"], alpha=c["alpha"]))
        for c in case["inputs"]["cases"]
    ]
    return {"cis": cis}


Runner = Callable[[dict[str, Any]], Outputs]
RUNNERS_BY_METHOD: dict[str, Runner] = {
    "welch_t_two_sided": run_welch,
    "welch_t_two_sided_cuped_ratio": run_welch,
    "welch_t_one_sided_greater": run_welch,
    "welch_t_one_sided_lesser": run_welch,
    "sequential_asymptotic_cs_two_sided": run_sequential,
    "sequential_asymptotic_cs_two_sided_cuped": run_sequential,
    "sequential_asymptotic_cs_two_sided_cuped_ratio": run_sequential,
    "sequential_asymptotic_cs_one_sided_greater": run_sequential,
    "sequential_asymptotic_cs_one_sided_lesser": run_sequential,
    "bayes_gaussian_effect_improper_prior": run_bayes,
    "bayes_gaussian_effect_proper_prior": run_bayes,
    "bayes_gaussian_effect_quantile": run_bayes_quantile,
    "bayes_risk_truncated_normal": run_risk,
    "mid_experiment_power": run_mid_experiment,
    "frequentistVariance": run_delta_variance,
    "powerEstFrequentist/findMdeFrequentist": run_power_and_mde,
    "powerEstFrequentist/findMdeFrequentist (sequential)": run_power_and_mde,
    "powerMetricWeeks": run_power_weeks,
    "srm_chi_square": run_srm,
    "holm": run_holm,
    "fdr_bh": run_bh,
    "adjustedCI": run_adjusted_ci,
}

RUNNERS: dict[str, Runner] = {
    cid: RUNNERS_BY_METHOD[case["method"]]
    for cid, case in CASES.items()
    if case["method"] in RUNNERS_BY_METHOD
}

# Cases keystep does not run, with the reason. Every oracle case is currently supported.
UNSUPPORTED: dict[str, str] = {}


def test_every_case_is_accounted_for() -> None:
    assert set(RUNNERS).isdisjoint(UNSUPPORTED)
    assert set(RUNNERS) | set(UNSUPPORTED) == set(CASES)
    assert len(CASES) == 30


# --- comparison ------------------------------------------------------------------------------------


def _expected_number(value: Any) -> float:
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return float(value)


def assert_matches(actual: Any, expected: Any, tolerance: dict[str, float], path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"missing output {path}.{key}"
            assert_matches(actual[key], value, tolerance, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(a, e, tolerance, f"{path}[{k}]")
    elif expected is None:
        assert actual is None, f"{path}: expected None, got {actual!r}"
    else:
        want = _expected_number(expected)
        assert actual is not None and isinstance(actual, float | int), f"{path}: got {actual!r}"
        if math.isinf(want):
            assert actual == want, f"{path}: {actual} != {want}"
        elif "abs" in tolerance:
            assert abs(actual - want) <= tolerance["abs"] * (1 + 1e-9), f"{path}: {actual} vs {want}"
        else:
            assert actual == pytest.approx(want, rel=tolerance["rtol"]), path


@pytest.mark.parametrize("case_id", sorted(RUNNERS))
def test_oracle_case(case_id: str) -> None:
    case = CASES[case_id]
    assert_matches(RUNNERS[case_id](case), case["expected"], case["tolerance"], case_id)


def test_comparison_can_fail() -> None:
    """The comparison itself rejects a wrong number, a wrong infinity and a missing None."""
    tol = {"abs": 5e-6}
    with pytest.raises(AssertionError):
        assert_matches({"x": 0.5001}, {"x": 0.5}, tol)
    with pytest.raises(AssertionError):
        assert_matches([1.0], ["inf"], tol)
    with pytest.raises(AssertionError):
        assert_matches({"w": 8}, {"w": None}, tol)
