"""`keystep stats compare` and `keystep stats srm`: whole JSON bodies, each number worked out independently.

Expected numbers come from scipy (``ttest_ind_from_stats`` for absolute Welch tests, ``stats.t`` for a Welch
t computed by hand on the delta-method relative effect, ``chisquare`` for SRM, ``norm``/``truncnorm`` for the
Bayesian posterior), the confidence sequence formulas of Waudby-Smith et al. (arXiv:2103.06476) written out
here, and GrowthBook's published numbers (``tests/oracles/stats_cases.json``) where a case fits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from conftest import ORACLES
from keystep.cli.app import app

runner = CliRunner()
ORACLE = {c["id"]: c for c in json.loads((ORACLES / "stats_cases.json").read_text())["cases"]}
ORACLE_TOL = 5e-6  # the oracle cases are rounded to 5 decimals
TIGHT = 1e-9


def oracle(case_id: str) -> dict[str, Any]:
    case = ORACLE[case_id]
    assert case["tolerance"] == {"abs": ORACLE_TOL, "source_rounding": "5 decimals"}
    return dict(case["expected"])


def near(value: float, rel: float = TIGHT) -> Any:
    return pytest.approx(value, rel=rel, abs=1e-15)


def near_oracle(value: float) -> Any:
    return pytest.approx(value, abs=ORACLE_TOL * (1 + 1e-9))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variants.csv"
    path.write_text(text, encoding="utf-8")
    return path


def compare_json(path: Path, *args: str) -> Any:
    result = runner.invoke(app, ["stats", "compare", str(path), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- independent computations ------------------------------------------------------------------------


def moments(n: int, total: float, squares: float | None) -> tuple[float, float]:
    """Mean and per-unit variance: p(1 − p) for a proportion, the sample variance for a mean."""
    mean = total / n
    if squares is None:
        return mean, mean * (1 - mean)
    return mean, (squares - total**2 / n) / (n - 1)


def effect(a: tuple[float, float, int], b: tuple[float, float, int], relative: bool) -> tuple[float, float]:
    """Point estimate and standard error (delta method for the relative effect)."""
    (ma, va, na), (mb, vb, nb) = a, b
    if relative:
        return (mb - ma) / abs(ma), math.sqrt(vb / (ma**2 * nb) + va * mb**2 / (ma**4 * na))
    return mb - ma, math.sqrt(vb / nb + va / na)


def welch(a: tuple[float, float, int], b: tuple[float, float, int], relative: bool, alpha: float = 0.05
          ) -> dict[str, Any]:
    (_, va, na), (_, vb, nb) = a, b
    est, se = effect(a, b, relative)
    dof = (vb / nb + va / na) ** 2 / ((vb / nb) ** 2 / (nb - 1) + (va / na) ** 2 / (na - 1))
    half = float(sps.t.ppf(1 - alpha / 2, dof)) * se
    p = 2 * float(sps.t.sf(abs(est / se), dof))
    return {"point_estimate": est, "se": se, "ci": [est - half, est + half], "p_value": p, "dof": dof}


def confidence_sequence(a: tuple[float, float, int], b: tuple[float, float, int], relative: bool,
                        tuning: float, alpha: float = 0.05) -> dict[str, Any]:
    """Two-sided asymptotic confidence sequence and its mixture p-value (Waudby-Smith et al., eq. 155)."""
    est, se = effect(a, b, relative)
    n = a[2] + b[2]
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    half = se * math.sqrt(n) * math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))
    p = min(1.0, math.sqrt(n * rho2 + 1) * math.exp(-rho2 * n * (est / se) ** 2 / (2 * (n * rho2 + 1))))
    return {"point_estimate": est, "se": se, "ci": [est - half, est + half], "p_value": p}


def posterior(a: tuple[float, float, int], b: tuple[float, float, int], relative: bool, alpha: float = 0.05
              ) -> dict[str, Any]:
    """Flat prior: the posterior is N(estimate, se²); risks are truncated-normal means times their mass."""
    est, se = effect(a, b, relative)
    gain = sps.truncnorm(-est / se, math.inf, loc=est, scale=se)  # Δ | Δ > 0
    loss = sps.truncnorm(-math.inf, -est / se, loc=est, scale=se)  # Δ | Δ < 0
    win = float(sps.norm.sf(0, est, se))
    return {
        "point_estimate": est,
        "se": se,
        "ci": [float(sps.norm.ppf(alpha / 2, est, se)), float(sps.norm.ppf(1 - alpha / 2, est, se))],
        "chance_to_win": win,
        "risk": {"keep_control": win * float(gain.mean()), "ship_treatment": -(1 - win) * float(loss.mean())},
    }


def srm_body(counts: list[int], weights: list[float]) -> dict[str, Any]:
    total_w = sum(weights)
    used = [k for k, w in enumerate(weights) if w > 0]
    total = sum(counts[k] for k in used)
    expected = [total * weights[k] / sum(weights[j] for j in used) for k in used]
    ref = sps.chisquare([counts[k] for k in used], f_exp=expected)
    full: list[Any] = [None] * len(counts)
    for k, e in zip(used, expected, strict=True):
        full[k] = near(e)
    return {
        "counts": counts,
        "weights": [near(w / total_w) for w in weights],
        "expected": full,
        "chi_square": near(float(ref.statistic)),
        "dof": len(used) - 1,
        "p_value": near(float(ref.pvalue), 1e-7),
        "threshold": 0.001,
        "mismatch": float(ref.pvalue) < 0.001,
    }


def approx_all(numbers: dict[str, Any], rel: float = TIGHT) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in numbers.items():
        if isinstance(value, dict):
            out[key] = approx_all(value, rel)
        elif isinstance(value, list):
            out[key] = [near(v, rel) for v in value]
        else:
            out[key] = near(value, rel)
    return out


def variant(name: str, n: int, total: float, squares: float | None = None) -> dict[str, Any]:
    mean, var = moments(n, total, squares)
    body: dict[str, Any] = {"variant": name, "n": n, "sum": total}
    if squares is not None:
        body["sum_squares"] = squares
    return {**body, "mean": near(mean), "variance": near(var)}


def without_summaries(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    summaries = [c.pop("summary") for c in body["comparisons"]]
    return body, summaries


# --- compare: frequentist ----------------------------------------------------------------------------


def test_frequentist_relative_proportion_whole_body(tmp_path: Path) -> None:
    """GrowthBook's two-sided binomial t test (28/14 vs 30/16), and a third arm, by hand with scipy's t."""
    path = write(tmp_path, "variant,n,sum\nA,28,14\nB,30,16\nC,40,34\n")
    body, summaries = without_summaries(compare_json(path))
    a, b, c = (0.5, 0.25, 28), (16 / 30, 16 / 30 * 14 / 30, 30), (0.85, 0.85 * 0.15, 40)
    hand_b, hand_c = welch(a, b, relative=True), welch(a, c, relative=True)
    gb = oracle("gb_ttest_two_sided_relative_binomial")
    assert {k: hand_b[k] for k in gb} == {k: near_oracle(v) if not isinstance(v, list) else
                                          [near_oracle(x) for x in v] for k, v in gb.items()}
    assert body == {
        "type": "proportion",
        "method": "frequentist",
        "difference": "relative",
        "alpha": 0.05,
        "tuning": None,
        "prior": None,
        "control": "A",
        "variants": [variant("A", 28, 14), variant("B", 30, 16), variant("C", 40, 34)],
        "comparisons": [
            {"variant": "B", "control": "A", **approx_all(hand_b), "decision": "inconclusive", "error": None},
            {"variant": "C", "control": "A", **approx_all(hand_c), "decision": "higher", "error": None},
        ],
        "srm": srm_body([28, 30, 40], [1, 1, 1]),
    }
    assert hand_c["p_value"] < 0.05 < hand_b["p_value"]
    assert summaries[0] == (
        "No significant difference between B and A at α = 0.05 (p = 0.8071); +6.67%, 95% CI −47.77% to +61.10% "
        "includes 0. Valid for a single look at a sample size fixed in advance."
    )
    assert summaries[1] == ("C is higher than A: +70.00% (95% CI +1.44% to +138.56%), p = 0.0456, below α = 0.05. "
                            "Valid for a single look at a sample size fixed in advance.")


def test_frequentist_absolute_mean_matches_scipy_ttest_from_stats(tmp_path: Path) -> None:
    """The gbstats mean case (absolute), plus a lower arm: p-values from scipy's Welch test on the summary."""
    rows = [("A", 3407, 1396.87, 52377.9767), ("B", 3461, 2422.7, 134698.29), ("C", 3390, 500.0, 30000.0)]
    path = write(tmp_path, "variant,n,sum,sum_squares\n" + "".join(f"{v},{n},{s},{q}\n" for v, n, s, q in rows))
    body, _ = without_summaries(compare_json(path, "--type", "mean", "--difference", "absolute"))
    arms = [(*moments(n, s, q), n) for _, n, s, q in rows]
    comparisons = []
    for (name, *_), arm in zip(rows[1:], arms[1:], strict=True):
        hand = welch(arms[0], arm, relative=False)
        ref = sps.ttest_ind_from_stats(arm[0], math.sqrt(arm[1]), arm[2], arms[0][0], math.sqrt(arms[0][1]),
                                       arms[0][2], equal_var=False)
        assert hand["point_estimate"] / hand["se"] == pytest.approx(float(ref.statistic), rel=1e-12)
        hand["p_value"] = float(ref.pvalue)
        decision = "inconclusive" if hand["p_value"] >= 0.05 else "higher" if hand["point_estimate"] > 0 else "lower"
        comparisons.append({"variant": name, "control": "A", **approx_all(hand), "decision": decision,
                            "error": None})
    gb = oracle("gb_ttest_two_sided_absolute_mean")
    got_b = body["comparisons"][0]
    assert [got_b["point_estimate"], got_b["se"], got_b["p_value"], *got_b["ci"]] == [
        near_oracle(gb["point_estimate"]), near_oracle(gb["se"]), near_oracle(gb["p_value"]),
        *[near_oracle(x) for x in gb["ci"]]]
    assert [c["decision"] for c in comparisons] == ["higher", "lower"]
    assert body == {
        "type": "mean",
        "method": "frequentist",
        "difference": "absolute",
        "alpha": 0.05,
        "tuning": None,
        "prior": None,
        "control": "A",
        "variants": [variant(*row) for row in rows],
        "comparisons": comparisons,
        "srm": srm_body([3407, 3461, 3390], [1, 1, 1]),
    }


def test_alpha_changes_the_interval_and_the_decision(tmp_path: Path) -> None:
    path = write(tmp_path, "variant,n,sum,sum_squares\nA,3407,1396.87,52377.9767\nB,3461,2422.7,134698.29\n")
    body = compare_json(path, "--type", "mean", "--alpha", "0.1")
    hand = welch((*moments(3407, 1396.87, 52377.9767), 3407), (*moments(3461, 2422.7, 134698.29), 3461),
                 relative=True, alpha=0.1)
    gb = oracle("gb_ttest_two_sided_relative_mean")  # at alpha 0.05: p = 0.06191, not significant
    assert hand["p_value"] == near_oracle(gb["p_value"])
    item = body["comparisons"][0]
    assert item["ci"] == [near(x) for x in hand["ci"]]
    assert item["decision"] == "higher"  # 0.062 < 0.1
    assert "90% CI" in item["summary"]


# --- compare: sequential -----------------------------------------------------------------------------


def test_sequential_proportion_whole_body(tmp_path: Path) -> None:
    """GrowthBook's sequential binomial case (N* = 5,000) and a null arm, against the formulas."""
    path = write(tmp_path, "variant,n,sum\ncontrol,3000,1396\ntreatment,3461,2422\nother,3100,1400\n")
    body, summaries = without_summaries(compare_json(path, "--method", "sequential"))
    arms = [(s / n, s / n * (1 - s / n), n) for n, s in ((3000, 1396), (3461, 2422), (3100, 1400))]
    hand = [confidence_sequence(arms[0], arm, relative=True, tuning=5000) for arm in arms[1:]]
    gb = oracle("gb_seq_two_sided_relative_binomial_default_tuning")
    assert [hand[0]["point_estimate"], hand[0]["se"], *hand[0]["ci"]] == [
        near_oracle(gb["point_estimate"]), near_oracle(gb["se"]), *[near_oracle(x) for x in gb["ci"]]]
    assert hand[0]["p_value"] == near_oracle(gb["p_value"])
    assert body == {
        "type": "proportion",
        "method": "sequential",
        "difference": "relative",
        "alpha": 0.05,
        "tuning": 5000.0,
        "prior": None,
        "control": "control",
        "variants": [variant("control", 3000, 1396), variant("treatment", 3461, 2422), variant("other", 3100, 1400)],
        "comparisons": [
            {"variant": "treatment", "control": "control", **approx_all(hand[0]), "decision": "higher",
             "error": None},
            {"variant": "other", "control": "control", **approx_all(hand[1]), "decision": "inconclusive",
             "error": None},
        ],
        "srm": srm_body([3000, 3461, 3100], [1, 1, 1]),
    }
    assert body["srm"]["mismatch"]  # 3,000 / 3,461 / 3,100 is not an equal split
    assert "so you can stop now" in summaries[0]
    assert summaries[1].startswith("No decision yet for other vs control")


def test_sequential_tuning_and_weights(tmp_path: Path) -> None:
    """GrowthBook's mean case at N* = 1,000; the 3000:3461 split against 46:54 weights."""
    path = write(tmp_path, "variant,n,sum,sum_squares\nA,3000,1396.87,52377.9767\nB,3461,2422.7,134698.29\n")
    body = compare_json(path, "--type", "mean", "--method", "sequential", "--tuning", "1000",
                        "--weights", "46,54")
    hand = confidence_sequence((*moments(3000, 1396.87, 52377.9767), 3000),
                               (*moments(3461, 2422.7, 134698.29), 3461), relative=True, tuning=1000)
    gb = oracle("gb_seq_two_sided_relative_mean_tuning1000")
    assert hand["ci"] == [near_oracle(x) for x in gb["ci"]] and hand["p_value"] == gb["p_value"] == 1.0
    item = body["comparisons"][0]
    assert {k: item[k] for k in hand} == approx_all(hand)
    assert body["tuning"] == 1000.0 and item["decision"] == "inconclusive"
    assert body["srm"] == srm_body([3000, 3461], [46, 54])


# --- compare: Bayesian -------------------------------------------------------------------------------


def test_bayesian_proportion_whole_body(tmp_path: Path) -> None:
    """GrowthBook's flat-prior binomial case (49/100 vs 51/100), risks from truncated normals."""
    path = write(tmp_path, "variant,n,sum\nA,100,49\nB,100,51\n")
    body, summaries = without_summaries(compare_json(path, "--method", "bayesian"))
    hand = posterior((0.49, 0.49 * 0.51, 100), (0.51, 0.51 * 0.49, 100), relative=True)
    gb = oracle("gb_bayes_binomial_relative_flat")
    assert [hand["point_estimate"], hand["se"], hand["chance_to_win"], *hand["ci"]] == [
        near_oracle(gb["point_estimate"]), near_oracle(gb["se"]), near_oracle(gb["chance_to_win"]),
        *[near_oracle(x) for x in gb["ci"]]]
    assert [hand["risk"]["keep_control"], hand["risk"]["ship_treatment"]] == [near_oracle(x) for x in gb["risk"]]
    assert body == {
        "type": "proportion",
        "method": "bayesian",
        "difference": "relative",
        "alpha": 0.05,
        "tuning": None,
        "prior": "flat",
        "control": "A",
        "variants": [variant("A", 100, 49), variant("B", 100, 51)],
        "comparisons": [{"variant": "B", "control": "A", **approx_all(hand, 1e-8), "decision": "inconclusive",
                         "error": None}],
        "srm": srm_body([100, 100], [1, 1]),
    }
    assert summaries == ["Inconclusive for B vs A: chance to win 60.9%, between 5% and 95%; expected loss if you "
                         "ship B: 4.06%, if you keep A: 8.14%."]


@pytest.mark.parametrize(("alpha", "decision"), [("0.05", "inconclusive"), ("0.1", "higher")])
def test_bayesian_mean_threshold(tmp_path: Path, alpha: str, decision: str) -> None:
    """GrowthBook's flat-prior mean case: chance to win 91.9% is a winner at 90% but not at 95%."""
    path = write(tmp_path, "variant,n,sum,sum_squares\nA,10,100,1002.25\nB,10,105,1111.5\n")
    item = compare_json(path, "--type", "mean", "--method", "bayesian", "--alpha", alpha)["comparisons"][0]
    gb = oracle("gb_bayes_mean_relative_flat")
    assert item["chance_to_win"] == near_oracle(gb["chance_to_win"])
    hand = posterior((*moments(10, 100, 1002.25), 10), (*moments(10, 105, 1111.5), 10), relative=True,
                     alpha=float(alpha))
    assert item["ci"] == [near(x) for x in hand["ci"]]
    assert item["decision"] == decision


def test_bayesian_absolute_lower(tmp_path: Path) -> None:
    path = write(tmp_path, "variant,n,sum\nA,5000,600\nB,5000,500\n")
    item = compare_json(path, "--method", "bayesian", "--difference", "absolute")["comparisons"][0]
    hand = posterior((0.12, 0.12 * 0.88, 5000), (0.1, 0.1 * 0.9, 5000), relative=False)
    assert {k: item[k] for k in hand} == approx_all(hand, 1e-8)
    assert item["decision"] == "lower" and item["chance_to_win"] < 0.05
    assert item["summary"] == ("B is likely lower than A: chance to win 0.1% (≤ 5%), −2.00 pp; "
                               "expected loss if you ship B: 2.00 pp.")


# --- compare: not estimable --------------------------------------------------------------------------


def test_not_estimable_arms_are_reported_not_crashed(tmp_path: Path) -> None:
    path = write(tmp_path, "variant,n,sum\nA,50,0\nB,50,5\n")
    item = compare_json(path)["comparisons"][0]
    assert item == {"variant": "B", "control": "A", "point_estimate": None, "se": None, "ci": [None, None],
                    "p_value": None, "dof": None, "decision": "not_estimable", "error": "zero_or_negative_variance",
                    "summary": "B vs A: not estimable: an arm has no variance (every unit the same, e.g. no "
                               "conversions or all converted)."}
    # A control mean of 0 with a spread (values −1 and +1): not estimable, relative or absolute (as gbstats).
    mean_path = write(tmp_path, "variant,n,sum,sum_squares\nA,100,0,100\nB,100,10,110\n")
    for difference in ("relative", "absolute"):
        item = compare_json(mean_path, "--type", "mean", "--difference", difference)["comparisons"][0]
        assert (item["decision"], item["error"], item["p_value"]) == ("not_estimable", "baseline_mean_zero", None)
        assert item["summary"] == ("B vs A: not estimable: the control's mean is 0, so there is no baseline "
                                   "to compare with.")


# --- srm ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "weights", "oracle_p"),
    [
        ([1000, 1200], None, 2.0079e-05),
        ([310, 98], [0.75, 0.25], 0.647434186),
        ([1000, 1200, 900], [0.5, 0.5, 0], 2.0079e-05),  # a weight of 0 leaves the arm out
        ([500, 500, 600], [0.34, 0.33, 0.33], 0.000592638),
        ([5000, 5100], None, None),
    ],
)
def test_srm_whole_body(counts: list[int], weights: list[float] | None, oracle_p: float | None) -> None:
    args = ["stats", "srm", "--counts", ",".join(map(str, counts)), "--json"]
    if weights is not None:
        args += ["--weights", ",".join(map(str, weights))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body == srm_body(counts, weights or [1.0] * len(counts))
    if oracle_p is not None:
        assert body["p_value"] == pytest.approx(oracle_p, abs=5e-10)


def test_srm_human_output() -> None:
    flagged = runner.invoke(app, ["stats", "srm", "--counts", "1000,1200"], env={"COLUMNS": "200"})
    assert flagged.exit_code == 0, flagged.output
    text = " ".join(flagged.stdout.split())
    assert "│ 1 │ 1,000 │ 1,100.0 │ 0.5 │" in text
    assert "Sample ratio mismatch: χ² = 18.182 on 1 df, p < 0.0001 against weights 0.5/0.5, below 0.001." in text
    ok = runner.invoke(app, ["stats", "srm", "--counts", "5000,5100"], env={"COLUMNS": "200"})
    assert "Sample ratio OK: χ² = 0.990 on 1 df, p = 0.3197 against weights 0.5/0.5 (flagged below p < 0.001)." \
        in " ".join(ok.stdout.split())


# --- human output ------------------------------------------------------------------------------------


def test_compare_human_output(tmp_path: Path) -> None:
    path = write(tmp_path, "variant,n,sum\nA,3000,1396\nB,3461,2422\nC,3100,1400\n")
    result = runner.invoke(app, ["stats", "compare", str(path), "--method", "sequential"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "│ A (control) │ 3,000 │ 1,396 │ 46.53% │" in text
    assert "Relative effect vs A: sequential test (always valid, N* = 5,000)" in text
    assert "│ B │ +50.39% │ +40.10% to +60.67% │ <0.0001 │ higher │" in text
    assert "│ C │ −2.95% │ −11.15% to +5.26% │ 1.0000 │ inconclusive │" in text
    assert ("B is higher than A: +50.39%, the 95% confidence sequence +40.10% to +60.67% excludes 0, so you can "
            "stop now (valid however often you looked).") in text
    assert "Sample ratio mismatch: χ² = 36.904 on 2 df" in text


def test_compare_human_output_bayesian_absolute_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "variant,n,sum,sum_squares\nA,3407,1396.87,52377.9767\nB,3461,2422.7,134698.29\n")
    result = runner.invoke(app, ["stats", "compare", str(path), "--type", "mean", "--method", "bayesian",
                                 "--difference", "absolute"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "│ A (control) │ 3,407 │ 1,396.87 │ 0.410 │ 3.9 │" in text
    assert "┃ Chance to win ┃ Risk (ship) ┃ Decision ┃" in text
    assert "│ B │ +0.29 │ +0.05 to +0.53 │ 99.0% │ 0.00043 │ higher │" in text
    assert ("B is likely higher than A: chance to win 99.0% (≥ 95%), +0.29; expected loss if you ship B: "
            "0.00043.") in text
    assert "Sample ratio OK" in text


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("variant,n\nA,10\nB,10\n", [], "missing column sum; the header is 'variant,n'"),
        ("variant,n,sum\nA,10,3\nB,ten,3\n", [], "line 3 (variant 'B'), column n: expected a number, got 'ten'"),
        ("variant,n,sum\nA,10,3\nB,0,0\n", [], "line 3 (variant 'B'), column n: expected a positive number of units"),
        ("variant,n,sum\nA,-4,0\nB,5,0\n", [], "line 2 (variant 'A'), column n: expected a positive number"),
        ("variant,n,sum\nA,10.5,3\nB,10,3\n", [], "line 2 (variant 'A'), column n: expected a whole number"),
        ("variant,n,sum\nA,10,3\nB,10,11\n", [], "line 3 (variant 'B'), column sum: 11 conversions is more than "
                                                 "the n = 10 units"),
        ("variant,n,sum\nA,10,-1\nB,10,1\n", [], "line 2 (variant 'A'), column sum: conversions cannot be negative"),
        ("variant,n,sum\nA,10,x\nB,10,1\n", [], "line 2 (variant 'A'), column sum: expected a number, got 'x'"),
        ("variant,n,sum\nA,10,inf\nB,10,1\n", [], "column sum: expected a finite number"),
        ("variant,n,sum\nA,10,3\n", [], "1 variant; need the control (first row) and at least one treatment"),
        ("variant,n,sum\n", [], "0 variants; need the control"),
        ("", [], "is empty: expected a header line variant,n,sum"),
        ("variant,n,sum\nA,10,3\nB,10,3\n", ["--type", "mean"], "missing column sum_squares (--type mean needs"),
        ("variant,n,sum,sum_squares\nA,10,3,3\nB,10,3,3\n", [], "unexpected column sum_squares"),
        ("variant,n,sum,sum_squares\nA,10,3,3\nB,10,3,x\n", ["--type", "mean"],
         "line 3 (variant 'B'), column sum_squares: expected a number, got 'x'"),
        ("variant,n,sum,sum_squares\nA,10,3,0.5\nB,10,3,3\n", ["--type", "mean"],
         "line 2 (variant 'A'), column sum_squares: 0.5 is less than sum²/n = 0.9"),
        ("variant,n,sum\nA,10,3\nA,10,3\n", [], "line 3, column variant: 'A' already given on line 2"),
        ("variant,n,sum\n,10,3\nB,10,3\n", [], "line 2, column variant: empty variant name"),
        ("variant,n,sum\nA,10,3\nB,10,3,4\n", [], "line 3: 4 fields, the header has 3"),
        ("variant,n,sum\nA,10,3\nB,10,3\n", ["--weights", "1,2,3"], "--weights: 3 weights for 2 variants"),
        ("variant,n,sum\nA,10,3\nB,10,3\n", ["--weights", "1,-1"], "--weights: item 2 must be a non-negative"),
        ("variant,n,sum\nA,10,3\nB,10,3\n", ["--alpha", "1.5"], "--alpha: expected a level between 0 and 1"),
        ("variant,n,sum\nA,10,3\nB,10,3\n", ["--method", "sequential", "--tuning", "0"],
         "--tuning: expected a positive number of units"),
    ],
)
def test_bad_files_and_options(tmp_path: Path, text: str, args: list[str], message: str) -> None:
    path = write(tmp_path, text)
    result = runner.invoke(app, ["stats", "compare", str(path), *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stats", "compare", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no file at" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--counts", "5000"], "--counts: give the units of at least two variants"),
        (["--counts", "5000,x"], "--counts: item 2 is not a number: 'x'"),
        (["--counts", "5000,10.5"], "--counts: item 2 must be a whole number"),
        (["--counts", "0,0"], "--counts: no units at all"),
        (["--counts", "5,6", "--weights", "1"], "--weights: 1 weights for 2 variants"),
        (["--counts", "5,6", "--weights", "1,0"], "--weights: at least two variants need a positive weight"),
    ],
)
def test_srm_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["stats", "srm", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
