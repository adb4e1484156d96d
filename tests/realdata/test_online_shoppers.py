"""The UCI online shoppers data set (12,330 real sessions, CC BY 4.0), analysed with keystep's own
commands as docs/real-data.md shows; every expectation is counted here from the CSV with the csv module."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import DATA
from keystep.cli.app import app

SHOPPERS = DATA / "online_shoppers_intention.csv"
CONFIG = Path(__file__).parents[2] / "examples" / "online-shoppers.yaml"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with SHOPPERS.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shoppers") / "keystep.duckdb"
    result = invoke("import", str(SHOPPERS), "--project", "shoppers", "--map", "session_id=@row,visitor_id=@row",
                    "--set", "event=session", "--set", "ts=2017-06-01", "--db", str(path))
    assert (result["stored"], result["rejected"]) == (12_330, 0)
    return path


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_purchase_rate_overall_and_for_new_vs_returning_visitors(rows: list[dict[str, str]], db: Path) -> None:
    report = invoke("conversions", "--db", str(db), "--config", str(CONFIG), "--breakdown", "prop:VisitorType",
                    "--goal", "purchase")
    (purchase,) = [g for group in report["groups"] for g in group["goals"]]
    bought = [r for r in rows if r["Revenue"] == "TRUE"]
    assert (len(bought), len(rows)) == (1_908, 12_330)  # the published facts of the data set
    assert (purchase["total"]["converted_units"], purchase["total"]["eligible_units"]) == (1_908, 12_330)
    assert round(100 * purchase["total"]["rate"]["estimate"], 2) == 15.47
    segments = {s["segment"]: s for s in purchase["segments"]}
    for kind in ("New_Visitor", "Returning_Visitor", "Other"):
        sessions = [r for r in rows if r["VisitorType"] == kind]
        converted = sum(r["Revenue"] == "TRUE" for r in sessions)
        assert (segments[kind]["stats"]["converted_units"], segments[kind]["stats"]["eligible_units"]) == (
            converted, len(sessions))
    # new visitors convert more often than returning ones, and keystep flags both as differing from the rest
    assert segments["New_Visitor"]["direction"] == "higher" and segments["New_Visitor"]["significant"]
    assert segments["Returning_Visitor"]["direction"] == "lower" and segments["Returning_Visitor"]["significant"]


def test_micro_goals_against_the_purchase(rows: list[dict[str, str]], db: Path) -> None:
    result = invoke("micro-macro", "--db", str(db), "--config", str(CONFIG), "--unit", "session")
    effects = {e["goal"]: e for e in result["overall"]["micro"]}
    for goal, column in (("product_pages", "ProductRelated"), ("valued_page", "PageValues"),
                         ("informational_pages", "Informational"), ("account_pages", "Administrative")):
        did = [r for r in rows if float(r[column]) > 0]
        did_not = [r for r in rows if float(r[column]) <= 0]
        e = effects[goal]
        assert (e["did"]["units"], e["did"]["macro_units"]) == (len(did), sum(r["Revenue"] == "TRUE" for r in did))
        assert (e["did_not"]["units"], e["did_not"]["macro_units"]) == (
            len(did_not), sum(r["Revenue"] == "TRUE" for r in did_not))
    # sessions that reached a page with a page value buy far more often (the data set's strongest signal)
    assert effects["valued_page"]["lift"]["lower"] > 10
