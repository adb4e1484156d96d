"""`keystep experiment create|list|analyze` on a store holding a simulated experiment, and the assignment
endpoint of a live server. Expectations are counted from the simulated events and computed by hand."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from conftest import event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app
from keystep.experiments.assignment import gb_hash

CONFIG = """\
# goals of a small shop
goals:
  add_to_cart: {kind: micro, category: process_milestone, match: add_to_cart}
  purchase: {kind: macro, type: revenue, match: purchase, value: {from: revenue, currency: EUR}}
"""
VISITORS = 4000
RATES = {"control": (0.20, 0.05), "green": (0.30, 0.06)}  # (add to cart, purchase) after exposure


def variant_of(visitor: str) -> str:
    """GrowthBook's hash v2 with equal weights over [0, 1): below 0.5 control (the oracle-checked hash)."""
    n = gb_hash("green_button", visitor, 2)
    assert n is not None
    return "control" if n < 0.5 else "green"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("experiment")
    db, config = folder / "keystep.duckdb", folder / "keystep.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    rng = random.Random(3)
    rows: list[dict[str, Any]] = []
    truth: dict[str, Any] = {v: {"units": 0, "cart": 0, "purchase": 0, "xy": []} for v in RATES}
    for i in range(VISITORS):
        visitor = f"v{i}"
        variant = variant_of(visitor)
        t = rng.randint(0, 7 * 24 * 60)
        pre = rng.random() < 0.1  # a cart before the exposure: CUPED's covariate
        if pre:
            rows.append({"visitor_id": visitor, "event": "add_to_cart", "t": t - 60})
        rows.append({"visitor_id": visitor, "event": "experiment_exposure", "t": t,
                     "properties": {"experiment": "green_button", "variant": variant}})
        truth[variant]["units"] += 1
        cart_p, buy_p = RATES[variant]
        cart = rng.random() < cart_p
        if cart:
            rows.append({"visitor_id": visitor, "event": "add_to_cart", "t": t + 2})
            truth[variant]["cart"] += 1
        truth[variant]["xy"].append((float(pre), float(cart)))
        if rng.random() < buy_p:
            rows.append({"visitor_id": visitor, "event": "purchase", "t": t + 5, "revenue": 40.0})
            truth[variant]["purchase"] += 1
    # two weeks before the experiment: 3,000 visitors; a cart makes a purchase far likelier (the relation the
    # surrogate prediction leans on)
    history = {"cart": [0, 0], "none": [0, 0]}  # [units, purchasers]
    for i in range(3000):
        t = -rng.randint(1, 14) * 24 * 60
        cart = rng.random() < 0.2
        bought = rng.random() < (0.2 if cart else 0.01)
        rows.append({"visitor_id": f"h{i}", "event": "page_view", "t": t})
        if cart:
            rows.append({"visitor_id": f"h{i}", "event": "add_to_cart", "t": t + 1})
        if bought:
            rows.append({"visitor_id": f"h{i}", "event": "purchase", "t": t + 3, "revenue": 40.0})
        group = history["cart" if cart else "none"]
        group[0] += 1
        group[1] += bought
    truth["history"] = history
    with DuckDBBackend(db) as store:
        store.insert_events(event_table(rows, project="shop"))
    return db, config, truth


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_create_keeps_the_file_and_analyze_measures_the_effect(shop: tuple[Path, Path, dict[str, Any]]) -> None:
    db, config, truth = shop
    run("experiment", "create", "green_button", "--variants", "control,green", "--primary", "purchase",
        "--secondary", "add_to_cart,purchase:value,purchase:value/add_to_cart:count", "--method", "frequentist",
        "--config", str(config))
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# goals of a small shop") and "green_button:" in text  # comments kept
    listed = run("experiment", "list", "--config", str(config), "--json")
    assert [e["experiment"] for e in listed] == ["green_button"]

    result = run("experiment", "analyze", "green_button", "--db", str(db), "--config", str(config), "--json")
    units = [truth["control"]["units"], truth["green"]["units"]]
    assert result["units"] == units
    chi2, p = sps.chisquare(units)
    assert math.isclose(result["srm"]["chi_square"], chi2) and math.isclose(result["srm"]["p_value"], p)
    metrics = {m["metric"]: m for m in result["metrics"]}
    (purchase,) = metrics["purchase"]["comparisons"]
    assert not purchase["cuped"]  # nobody purchased before exposure: no covariate to adjust with
    for name, key in (("purchase", "purchase"), ("add_to_cart", "cart")):
        (comparison,) = metrics[name]["comparisons"]
        pc, pt = truth["control"][key] / units[0], truth["green"][key] / units[1]
        assert [a["mean"] for a in metrics[name]["arms"]] == [pc, pt]
        if name == "purchase":
            assert math.isclose(comparison["effect"], pt / pc - 1, rel_tol=1e-9)
        else:  # CUPED with the pre-exposure cart, θ pooled over both arms, by hand in gbstats' convention:
            assert comparison["cuped"]  # the sample covariance over a proportion's p(1 − p) variance
            both = truth["control"]["xy"] + truth["green"]["xy"]
            mx, my = sum(x for x, _ in both) / len(both), sum(y for _, y in both) / len(both)
            covariance = sum((x - mx) * (y - my) for x, y in both) / (len(both) - 1)
            theta = covariance / (mx * (1 - mx))
            xc, xt = (sum(x for x, _ in truth[v]["xy"]) / len(truth[v]["xy"]) for v in RATES)
            adjusted = ((pt - theta * xt) - (pc - theta * xc)) / pc
            assert math.isclose(comparison["effect"], adjusted, rel_tol=1e-9)
            continue
        # the relative effect's delta-method variance, Welch–Satterthwaite degrees of freedom, two-sided t
        vc, vt = pc * (1 - pc) / units[0], pt * (1 - pt) / units[1]
        var = vt / pc**2 + pt**2 * vc / pc**4
        dof = (vc + vt) ** 2 / (vc**2 / (units[0] - 1) + vt**2 / (units[1] - 1))
        t = (pt / pc - 1) / math.sqrt(var)
        assert math.isclose(comparison["p_value"], 2 * sps.t.sf(abs(t), dof), rel_tol=1e-6)
    (cart,) = metrics["add_to_cart"]["comparisons"]
    assert cart["significant"] and cart["effect"] > 0  # +50%: clear at 2,000 units a side
    assert any("planned horizon" in w for w in result["warnings"])  # frequentist: the peeking caveat
    value = metrics["purchase:value"]
    assert [a["mean"] for a in value["arms"]] == [40.0 * truth[v]["purchase"] / truth[v]["units"] for v in RATES]
    # a ratio metric: revenue per cart, Σ revenue ÷ Σ carts after exposure, compared without CUPED
    ratio = metrics["purchase:value/add_to_cart:count"]
    per_cart = [40.0 * truth[v]["purchase"] / truth[v]["cart"] for v in RATES]
    assert [a["mean"] for a in ratio["arms"]] == pytest.approx(per_cart)
    (ratio_effect,) = ratio["comparisons"]
    assert not ratio_effect["cuped"] and ratio_effect["effect"] == pytest.approx(per_cart[1] / per_cart[0] - 1)

    # the surrogate: the cart change times the historical purchase-rate gap, relative to the control's rate
    (surrogate,) = result["surrogates"]
    h = truth["history"]
    with_cart, without = h["cart"][1] / h["cart"][0], h["none"][1] / h["none"][0]
    cart_change = truth["green"]["cart"] / units[1] - truth["control"]["cart"] / units[0]
    control_rate = truth["control"]["purchase"] / units[0]
    assert surrogate["label"].startswith("prediction")
    assert math.isclose(surrogate["predicted_effect"], cart_change * (with_cart - without) / control_rate)
    assert surrogate["lower"] < surrogate["predicted_effect"] < surrogate["upper"]

    human = run("experiment", "analyze", "green_button", "--db", str(db), "--config", str(config),
                "--method", "sequential")
    assert "sample ratio p" in human and "purchase" in human


def test_plan_shows_the_micro_metric_deciding_sooner(shop: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    db, _, truth = shop
    config = tmp_path / "plan.yaml"
    config.write_text(CONFIG + "experiments:\n  green_button:\n    variants: [control, green]\n"
                      "    primary: purchase\n    secondary: [add_to_cart]\n", encoding="utf-8")
    plan = run("experiment", "plan", "green_button", "--effect", "0.1", "--db", str(db), "--config", str(config),
               "--to", "2026-03-01", "--json")  # the two weeks before the experiment
    h = truth["history"]
    units = h["cart"][0] + h["none"][0]
    rates = {"add_to_cart": h["cart"][0] / units, "purchase": (h["cart"][1] + h["none"][1]) / units}
    by = {c["metric"]: c for c in plan["candidates"]}
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    for name, p in rates.items():
        assert math.isclose(by[name]["baseline"], p)
        # per arm, the relative effect's delta-method variance with both arms at the control's variance σ²
        # (GrowthBook's power convention): n = z² (σ²/μc² + μt² σ²/μc⁴) / effect²
        pt, var = p * 1.1, p * (1 - p)
        per_arm = z**2 * (var / p**2 + pt**2 * var / p**4) / 0.1**2
        assert abs(by[name]["units_fixed"] - 2 * per_arm) <= 0.002 * 2 * per_arm + 2
        assert by[name]["units_sequential"] > by[name]["units_fixed"]  # peeking-safe costs units
    assert by["add_to_cart"]["days_fixed"] < by["purchase"]["days_fixed"]  # the micro metric decides sooner
    assert plan["candidates"][0]["metric"] == "add_to_cart"


def test_a_sample_ratio_mismatch_is_shown_first(shop: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    db, _, _ = shop
    skewed = tmp_path / "skewed.yaml"
    skewed.write_text(CONFIG + "experiments:\n  green_button:\n    variants: [control, green]\n"
                      "    weights: [0.7, 0.3]\n    primary: purchase\n", encoding="utf-8")
    result = run("experiment", "analyze", "green_button", "--db", str(db), "--config", str(skewed), "--json")
    assert result["srm_mismatch"] and result["warnings"][0].startswith("sample ratio mismatch")
    human = CliRunner().invoke(app, ["experiment", "analyze", "green_button", "--db", str(db), "--config",
                                     str(skewed)], env={"COLUMNS": "200"})
    assert human.stdout.lstrip("╭─ \n│").startswith("Sample ratio mismatch") or \
        human.stdout.index("Sample ratio mismatch") < human.stdout.index("sample ratio p")


def test_bad_definitions_are_refused_before_writing(shop: tuple[Path, Path, dict[str, Any]]) -> None:
    _, config, _ = shop
    before = config.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["experiment", "create", "other", "--variants", "a,b", "--primary", "nope",
                                      "--config", str(config)])
    assert result.exit_code == 2 and "'nope' is not a goal" in result.stderr
    assert config.read_text(encoding="utf-8") == before


def test_the_assignment_endpoint_records_one_exposure(tmp_path: Path) -> None:
    from collector.server import make_site, serving, stored

    site = make_site(tmp_path, CONFIG + "experiments:\n  green_button:\n    variants: [control, green]\n"
                     "    primary: purchase\n")
    with serving(site) as server:
        answers = [httpx.post(server.url + "/api/v1/assign", json={"experiment": "green_button", "unit_id": "v7"},
                              headers={"Authorization": f"Bearer {site.write_key}"}).json() for _ in range(2)]
        missing = httpx.post(server.url + "/api/v1/assign", json={"experiment": "nope", "unit_id": "v7"},
                             headers={"Authorization": f"Bearer {site.write_key}"})
        unauthorized = httpx.post(server.url + "/api/v1/assign", json={"experiment": "green_button", "unit_id": "v7"})
    assert answers[0] == answers[1] == {"experiment": "green_button", "unit_id": "v7", "variant": variant_of("v7"),
                                        "in_experiment": True, "recorded": True}
    assert missing.status_code == 404 and unauthorized.status_code == 401
    exposures = stored(site, "SELECT visitor_id, properties FROM events WHERE event = 'experiment_exposure'")
    assert [(e["visitor_id"], json.loads(e["properties"])["variant"]) for e in exposures] == [("v7", variant_of("v7"))]


def test_experiments_are_defined_and_listed_through_the_api(tmp_path: Path) -> None:
    from collector.server import make_site, serving

    site = make_site(tmp_path, CONFIG)
    read = {"Authorization": f"Bearer {site.read_key}"}
    body = {"key": "green_button", "variants": ["control", "green"], "primary": "purchase",
            "secondary": ["add_to_cart"], "window": "7d"}
    with serving(site) as server:
        created = httpx.post(server.url + "/api/v1/experiments", json=body, headers=read)
        again = httpx.post(server.url + "/api/v1/experiments", json=body, headers=read)
        bad = httpx.post(server.url + "/api/v1/experiments", json={**body, "key": "other", "primary": "nope"},
                         headers=read)
        writer = httpx.post(server.url + "/api/v1/experiments", json={**body, "key": "x"},
                            headers={"Authorization": f"Bearer {site.write_key}"})
        listed = httpx.get(server.url + "/api/v1/experiments", headers=read).json()
        analysed = httpx.get(server.url + "/api/v1/experiments/green_button", headers=read)
    assert created.status_code == 201 and again.status_code == 422 and "exists already" in again.text
    assert bad.status_code == 422 and "'nope' is not a goal" in bad.text and "experiments.other.primary" in bad.text
    assert writer.status_code == 403
    assert [(e["experiment"], e["variants"]) for e in listed] == [("green_button", ["control", "green"])]
    assert analysed.status_code == 200 and analysed.json()["units"] == [0, 0]
    text = site.config.read_text(encoding="utf-8")
    assert "green_button:" in text and "other:" not in text and text.startswith("# goals of a small shop")
