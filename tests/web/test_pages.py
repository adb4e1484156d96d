"""The dashboard's pages over the demo shop, through the real app (`create_app`) and a test client.

The store holds the simulated shop (3,000 visitors), exposures of three experiments from its fourth week
on, and a few visitors whose event name, referrer and properties are an HTML injection or a spreadsheet
formula. Numbers on the pages are checked against the analysis functions run on the same store with the
same filters; strings from events must reach the HTML escaped (and `\\u003c`-escaped in chart JSON);
the editor must write the definitions file only after the file's own check passes.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from typer.testing import CliRunner

from conftest import event_table
from keystep.analysis.conversions import ConversionReport, run_conversions
from keystep.analysis.experiments import ExperimentResult, run_experiment
from keystep.analysis.funnels import FunnelResult, run_funnel
from keystep.analysis.micro_macro import MicroMacroResult, run_micro_macro
from keystep.analysis.time_to_convert import TimeToConvertResult, run_time_to_convert
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app as cli
from keystep.cli.init import Template, template_text
from keystep.collector import keys
from keystep.collector.app import Settings, create_app
from keystep.conversions.definitions import Definitions, Unit, parse_definitions
from keystep.demo import simulate_shop
from keystep.display import percent
from keystep.query import BREAKDOWNS, Granularity, Query
from keystep.web import auth, editor, pages
from keystep.web.handlers import BREAKDOWN_CHOICES
from keystep.web.views import change, neutralize

PROJECT = "demo"
XSS = "<img src=x onerror=alert(1)>"
FORMULA = "=1+2"
PASSWORD = "correct horse battery"
EXPERIMENTS = """
experiments:
  green_button:
    label: Green checkout button
    variants: [control, green]
    primary: purchase
    secondary: [add_to_cart]
    method: sequential
  price_test:
    variants: [control, low]
    primary: purchase
    method: bayesian
  skewed:
    variants: [a, b]
    primary: purchase
    method: frequentist
"""
# the variants and the share of units the first one gets: `skewed` (configured 50/50) is a sample ratio mismatch
EXPOSURES = {"green_button": (("control", "green"), 0.5), "price_test": (("control", "low"), 0.5),
             "skewed": (("a", "b"), 0.7)}


@dataclass
class Shop:
    client: TestClient
    config: Path
    db: Path
    start: date
    end: date
    csrf: str
    conversions: ConversionReport
    funnel: FunnelResult
    micro_macro: MicroMacroResult
    time_to_convert: TimeToConvertResult
    experiments: dict[str, ExperimentResult]
    micro_macro_by_device: MicroMacroResult
    time_to_convert_by_device: TimeToConvertResult

    def range(self, **extra: str) -> dict[str, str]:
        return {"project": PROJECT, "from": str(self.start), "to": str(self.end), **extra}


def extra_events(sim_events: Any, start: date, last: date) -> list[dict[str, Any]]:
    """Exposures for the visitors first seen from the fourth week on (one per experiment, a second before
    their first event, in its session and with its device), and four visitors carrying an injection or a
    formula in their event name, referrer and plan."""
    first: dict[str, dict[str, Any]] = {}
    for event in sim_events.sort_by([("visitor_id", "ascending"), ("ts", "ascending")]).to_pylist():
        first.setdefault(event["visitor_id"], event)
    cutoff = datetime.combine(start + timedelta(days=21), time())
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    for event in (e for e in first.values() if e["ts"] >= cutoff):
        for key, (variants, share) in EXPOSURES.items():
            variant = variants[0] if rng.random() < share else variants[1]
            rows.append({**{k: v for k, v in event.items() if k not in ("project", "event_id")},
                         "event": "experiment_exposure", "ts": event["ts"] - timedelta(seconds=1),
                         "properties": {"experiment": key, "variant": variant}})
    for i, plan in enumerate((XSS, XSS, FORMULA, FORMULA)):
        ts = datetime.combine(last, time(12, i))
        visitor = f"intruder{i}"
        rows.append({"visitor_id": visitor, "event": "page_view", "ts": ts, "referrer": XSS, "path": "/",
                     "device_type": "desktop", "properties": {"plan": plan}})
        rows.append({"visitor_id": visitor, "event": XSS, "ts": ts + timedelta(seconds=5),
                     "device_type": "desktop", "properties": {"plan": plan}})
    return rows


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("dashboard")
    db, config = folder / "keystep.duckdb", folder / "keystep.yaml"
    text = template_text(Template.SHOP) + EXPERIMENTS
    config.write_text(text, encoding="utf-8")
    definitions = parse_definitions(text, str(config))
    sim = simulate_shop(visitors=3000)
    start, end = sim.first_day, sim.last_day
    with DuckDBBackend(db) as store:
        store.insert_events(sim.events)
        store.insert_events(event_table(extra_events(sim.events, start, end), project=PROJECT))
        query = Query(project=PROJECT, start=start, end=end, timezone=definitions.timezone,
                      session_timeout=definitions.session_timeout)
        checkout = definitions.funnel("checkout")
        expected = {
            "conversions": run_conversions(store, definitions, query),
            "funnel": run_funnel(store, checkout, query.with_(unit=checkout.unit, breakdown="device_type")),
            "micro_macro": run_micro_macro(store, definitions, query.with_(unit=Unit.VISITOR)),
            "time_to_convert": run_time_to_convert(store, definitions, query.with_(unit=Unit.VISITOR),
                                                   from_goal="view_item", to_goal="purchase"),
            "experiments": {e.key: run_experiment(store, definitions, e.key, query.with_(unit=e.unit))
                            for e in definitions.experiments},
            "micro_macro_by_device": run_micro_macro(
                store, definitions, query.with_(unit=Unit.VISITOR, breakdown="device_type")),
            "time_to_convert_by_device": run_time_to_convert(
                store, definitions, query.with_(unit=Unit.VISITOR, breakdown="device_type"),
                from_goal="view_item", to_goal="purchase"),
        }
    app = create_app(Settings(db=db, definitions=definitions, config=config))
    with TestClient(app, follow_redirects=False) as client:
        created = client.post("/setup", data={"username": "admin", "password": PASSWORD})
        assert created.status_code == 303
        csrf = csrf_of(client.get("/conversions").text)
        yield Shop(client, config, db, start, end, csrf, **expected)


def page(shop: Shop, path: str, **params: str) -> str:
    response = shop.client.get(path, params=shop.range(**params))
    assert response.status_code == 200, response.text[:2000]
    return response.text


def export(shop: Shop, path: str, key: str, **params: str) -> list[list[str]]:
    response = shop.client.get(path, params=shop.range(export=key, **params))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


def row_of(rows: list[list[str]], first: str) -> list[str]:
    return next(r for r in rows if r and r[0] == first)


def chart_blocks(html: str) -> list[str]:
    return re.findall(r'<script type="application/json" data-chart="[^"]+">(.*?)</script>', html, flags=re.S)


# -- every page, logged in and not ------------------------------------------------------------------------

PAGES = ["/", "/conversions", "/funnels", "/micro-macro", "/experiments", "/experiments/green_button",
         "/settings"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_when_logged_in_and_sends_to_the_login_when_not(shop: Shop, path: str) -> None:
    html = page(shop, path)
    assert "<h1>" in html and "/static/app.js" in html and 'rel="icon" href="/static/icon.svg"' in html
    anonymous = TestClient(shop.client.app, follow_redirects=False)
    response = anonymous.get(path, params=shop.range())
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"


def test_the_breakdown_selector_offers_every_breakdown_and_the_icon_is_served(shop: Shop) -> None:
    assert {b for b, _ in BREAKDOWN_CHOICES} == set(BREAKDOWNS)
    assert shop.client.get("/static/icon.svg").headers["content-type"].startswith("image/svg+xml")


# -- the numbers are the analyses' --------------------------------------------------------------------------


def test_the_conversions_table_has_the_analysis_numbers(shop: Shop) -> None:
    rows = export(shop, "/conversions", "conversions")
    assert rows[0][:4] == ["Goal", "Definition", "Eligible sessions", "Converted"]
    for goal in shop.conversions.goals:
        row = row_of(rows, goal.title)
        s = goal.total
        assert row[2:6] == [f"{s.eligible_units:,}", f"{s.converted_units:,}", percent(s.rate.estimate, 2),
                            f"{100 * s.rate.lower:.2f}–{100 * s.rate.upper:.2f}%"]
    purchase = row_of(rows, "Purchase")
    assert purchase[1] == "event purchase; value from revenue EUR"
    assert row_of(rows, "Checkout started")[1] == "event begin_checkout; eligible: event add_to_cart"
    assert ["Macro: revenue"] in rows and ["Micro: process milestones"] in rows  # grouped
    html = page(shop, "/conversions")
    assert f"<td>{shop.conversions.goals[0].title}</td>" in html and 'data-chart="chart-rates"' in html


def test_the_overview_has_the_rates_their_trend_and_the_change_from_the_previous_period(shop: Shop) -> None:
    """The overview's one query for the range, its days and the period before gives what the analysis
    gives for each alone."""
    definitions = parse_definitions(shop.config.read_text(encoding="utf-8"))
    start, end = shop.start + timedelta(days=20), shop.end
    before = (start - (end - start) - timedelta(days=1), start - timedelta(days=1))
    view = {"from": str(start), "to": str(end)}
    query = Query(project=PROJECT, start=start, end=end, timezone=definitions.timezone,
                  session_timeout=definitions.session_timeout)
    with DuckDBBackend(shop.db) as store:  # the app has the file open: the same database
        now = run_conversions(store, definitions, query)
        then = run_conversions(store, definitions, query.with_(start=before[0], end=before[1]))
        days = run_conversions(store, definitions, query.with_(granularity=Granularity.DAY))
    rows = export(shop, "/", "conversions", **view)
    assert rows[0][-1] == "vs previous period"
    rates_before = {g.title: g.total.rate.estimate for g in then.goals}
    changed = 0
    for goal in now.goals:
        s, row = goal.total, row_of(rows, goal.title)
        assert row[1:4] == [f"{s.eligible_units:,}", f"{s.converted_units:,}", percent(s.rate.estimate, 2)]
        assert row[-1] == neutralize(change(s.rate.estimate, rates_before[goal.title]))  # "+x%" as text
        changed += row[-1] != "–"
    assert changed >= 5
    trend = next(json.loads(b) for b in chart_blocks(page(shop, "/", **view)) if '"Conversion rate per day' in b)
    for goal, line in zip(days.goals, trend["data"], strict=True):
        assert line["name"] == goal.title
        assert line["x"] == [str(p.period) for p in goal.periods]
        assert line["y"] == [None if p.stats.eligible_units < 30 or p.stats.rate.estimate is None
                             else pytest.approx(100 * p.stats.rate.estimate) for p in goal.periods]


def test_segments_that_differ_are_marked(shop: Shop) -> None:
    html = page(shop, "/conversions", breakdown="device_type")
    rows = export(shop, "/conversions", "segments", breakdown="device_type")
    assert rows[0][0] == "device_type"
    assert any(r[-1] in ("▲ higher", "▼ lower") for r in rows)  # the demo's mobile checkout friction
    assert '<tr class="lower">' in html or '<tr class="higher">' in html


def test_the_funnel_page_has_the_analysis_numbers(shop: Shop) -> None:
    html = page(shop, "/funnels", funnel="checkout")
    for key in ("funnel", "segments", "time_to_convert"):
        assert f'data-chart="chart-{key}"' in html
    steps = export(shop, "/funnels", "steps", funnel="checkout")
    assert [r[2] for r in steps[1:]] == [f"{s.units:,}" for s in shop.funnel.total.steps]
    assert [r[1] for r in steps[1:]] == list(shop.funnel.steps)
    segments = export(shop, "/funnels", "segments", funnel="checkout", breakdown="device_type")
    assert {r[0]: r[1] for r in segments[1:]} == {s.segment: f"{s.table.entered:,}" for s in shop.funnel.segments}
    flagged = {r[0] for r in segments[1:] if r[-1]}
    assert flagged == {s.segment for s in shop.funnel.segments if s.significant}
    ttc = export(shop, "/funnels", "time_to_convert", funnel="checkout")
    assert ttc[2] == ["converted (Purchase)", f"{shop.time_to_convert.overall.converted:,}"]
    assert ttc[1][1] == f"{shop.time_to_convert.overall.started:,}"


def test_time_to_convert_and_micro_macro_flag_their_segments(shop: Shop) -> None:
    """The funnels page's time to convert and the micro → macro page, broken down by device: every segment
    with the analysis's counts, and the flags where the analysis found a difference (its tests check the
    log-rank and two-proportion tests against lifelines and statsmodels)."""
    ttc = export(shop, "/funnels", "time_to_convert_segments", funnel="checkout", breakdown="device_type")
    assert ttc[0][0] == "device_type"
    want = shop.time_to_convert_by_device.segments
    assert {r[0]: (r[1], r[2]) for r in ttc[1:]} == {g.segment: (f"{g.started:,}", f"{g.converted:,}") for g in want}
    marks = {"faster": "▲ faster", "slower": "▼ slower"}
    assert {r[0]: r[-1] for r in ttc[1:]} == {
        g.segment: marks[g.direction.value] if g.significant and g.direction else "" for g in want}
    effects = export(shop, "/micro-macro", "segments", breakdown="device_type")
    want_mm = shop.micro_macro_by_device.segments
    assert {r[0]: (r[1], r[2]) for r in effects[1:]} == {
        g.segment: (f"{g.units:,}", f"{g.macro_units:,}") for g in want_mm}
    flags = {"higher": "▲ higher", "lower": "▼ lower"}
    assert {r[0]: r[-1] for r in effects[1:]} == {
        g.segment: flags[g.direction.value] if g.significant and g.direction else "" for g in want_mm}
    plain = shop.client.get("/micro-macro", params=shop.range(export="segments"))
    assert plain.status_code == 404, "without a breakdown the page has no segment table"


def test_a_funnel_from_the_url(shop: Shop) -> None:
    html = page(shop, "/funnels", steps="view_item,purchase", window="2h", mode="any_order", breakdown="none")
    assert "view_item → purchase" in html and "any_order" in html and "chart-segments" not in html
    bad = shop.client.get("/funnels", params=shop.range(steps="view_item", window="2 hours"))
    assert bad.status_code == 400 and "expected a duration" in bad.text
    unknown = shop.client.get("/funnels", params=shop.range(funnel="nope"))
    assert unknown.status_code == 400 and "no funnel named &#39;nope&#39;" in unknown.text


def test_the_micro_macro_page_has_the_analysis_numbers(shop: Shop) -> None:
    html = page(shop, "/micro-macro")
    assert 'data-chart="chart-lift"' in html and "Suggested micro conversions" in html
    effects = export(shop, "/micro-macro", "effects")
    for e in shop.micro_macro.overall.micro:
        row = row_of(effects, e.label)
        assert row[2] == f"{e.did.units:,}"
        assert row[6] == ("–" if e.lift.ratio is None else f"{e.lift.ratio:.2f}×")
    suggestions = export(shop, "/micro-macro", "suggestions")
    assert suggestions[0] == ["Rank", "Micro conversion", "Recommended", "Score", "Reason"]
    assert all(r[4] for r in suggestions[1:])  # every suggestion says why
    values = export(shop, "/micro-macro", "values")
    assert row_of(values, "Newsletter sign-up")[-1] == "2 EUR each"  # next to the data-driven value


def test_the_experiments_list_and_detail(shop: Shop) -> None:
    html = page(shop, "/experiments")
    listed = export(shop, "/experiments", "experiments")
    for key, result in shop.experiments.items():
        row = row_of(listed, result.label)
        assert row[5] == " · ".join(f"{v}: {n:,}" for v, n in zip(result.variants, result.units, strict=True))
        assert row[6].startswith("MISMATCH" if result.srm_mismatch else "ok")
        assert f'href="/experiments/{key}?' in html
    assert shop.experiments["skewed"].srm_mismatch and not shop.experiments["green_button"].srm_mismatch

    skewed = page(shop, "/experiments/skewed")
    assert skewed.index("Sample ratio mismatch") < skewed.index("<h1>")  # the warning comes first
    green = page(shop, "/experiments/green_button")
    assert "Sample ratio mismatch" not in green
    assert 'data-chart="chart-intervals"' in green and 'data-chart="chart-cumulative"' in green
    comparisons = export(shop, "/experiments/green_button", "comparisons")
    assert "Adjusted p (Holm)" in comparisons[0] and "Chance to win" not in comparisons[0]
    metric = next(m for m in shop.experiments["green_button"].metrics if m.metric == "purchase")
    # a signed number starts like a formula: the export neutralizes it too
    assert row_of(comparisons, metric.label)[5] == f"'{100 * metric.comparisons[0].effect:+.1f}%"
    assert "Predictions, not measurements" in green and "PREDICTED macro effect" in green
    bayes = export(shop, "/experiments/price_test", "comparisons")
    assert "Chance to win" in bayes[0] and "p" not in bayes[0]
    plan = export(shop, "/experiments/green_button", "plan")
    kinds = {r[1] for r in plan[1:]}
    assert kinds == {"micro", "macro"}  # the plan compares micro and macro metrics
    missing = shop.client.get("/experiments/nope", params=shop.range())
    assert missing.status_code == 404 and "no experiment named" in missing.text


# -- escaping ----------------------------------------------------------------------------------------------


def test_strings_from_events_are_escaped_in_html_and_in_chart_json(shop: Shop) -> None:
    escaped = str(escape(XSS))
    seen_in_json = False
    for params in ({"steps": f"page_view,{XSS}", "breakdown": "referrer"}, {"steps": f"page_view,{XSS}",
                                                                          "breakdown": "prop:plan"}):
        html = page(shop, "/funnels", **params)
        assert XSS not in html
        assert escaped in html
        for block in chart_blocks(html):
            assert "<" not in block and ">" not in block
            if "\\u003cimg src=x onerror=alert(1)\\u003e" in block:
                seen_in_json = True
                assert XSS in json.dumps(json.loads(block), ensure_ascii=False)
    assert seen_in_json
    html = page(shop, "/conversions", breakdown="referrer")
    assert XSS not in html and escaped in html


def test_csv_export_neutralizes_formulas_from_events_and_definitions(shop: Shop) -> None:
    rows = export(shop, "/conversions", "segments", breakdown="prop:plan")
    assert "'" + FORMULA in [r[0] for r in rows if r]  # a segment (the plan property) that is a formula
    assert not any(cell.startswith("=") for r in rows for cell in r)
    label = '=HYPERLINK("http://evil.example","x")'
    saved = shop.client.post("/conversions/goals", data={
        "csrf": shop.csrf, "name": "formula_goal", "label": label, "kind": "micro", "group": "secondary_action",
        "event": "video_complete"})
    assert saved.status_code == 303
    conversions = export(shop, "/conversions", "conversions")
    assert row_of(conversions, "'" + label)
    assert not any(cell.startswith("=") for r in conversions for cell in r)


# -- the editor ---------------------------------------------------------------------------------------------


def test_the_editor_creates_a_goal_that_the_conversions_table_shows(shop: Shop) -> None:
    before = shop.config.read_text(encoding="utf-8")
    response = shop.client.post("/conversions/goals", params=shop.range(), data={
        "csrf": shop.csrf, "name": "checkout_page", "label": "Checkout page seen", "kind": "micro",
        "group": "process_milestone", "event": "page_view", "path": "/checkout*", "where": "device_type != tablet",
        "eligible_event": "add_to_cart", "value_kind": "fixed", "value_amount": "1.5", "currency": "EUR"})
    assert response.status_code == 303 and response.headers["location"].startswith("/conversions?")
    text = shop.config.read_text(encoding="utf-8")
    assert text.startswith(before.split("\n", 1)[0]) and "# read the amount from each event's revenue" in text
    goal = parse_definitions(text).goal("checkout_page")
    assert goal.match[0].path == "/checkout*" and goal.value is not None and goal.value.fixed == 1.5
    html = shop.client.get(response.headers["location"]).text
    assert "Saved “checkout_page”" in html
    rows = export(shop, "/conversions", "conversions")
    row = row_of(rows, "Checkout page seen")
    assert row[1] == ("event page_view, path /checkout*, where device_type != tablet; eligible: event add_to_cart; "
                      "value 1.5 EUR each")
    assert int(row[3].replace(",", "")) > 0


def test_the_editor_edits_and_deletes_goals_and_funnels(shop: Shop) -> None:
    post = shop.client.post
    html = page(shop, "/conversions", edit="video_complete")
    assert 'name="original" value="video_complete"' in html and 'value="Product video watched"' in html
    saved = post("/conversions/goals", data={
        "csrf": shop.csrf, "original": "video_complete", "label": "Video watched to the end", "kind": "micro",
        "group": "secondary_action", "event": "video_complete"})
    assert saved.status_code == 303
    text = shop.config.read_text(encoding="utf-8")
    assert "label: Video watched to the end" in text and "Product video watched" not in text
    assert "# what a subscriber is worth to you (optional)" in text  # other comments stay

    in_funnel = post("/conversions/goals/delete", data={"csrf": shop.csrf, "name": "add_to_cart"})
    assert in_funnel.status_code == 400 and "step of the funnel checkout" in in_funnel.text
    assert "add_to_cart:" in shop.config.read_text(encoding="utf-8")

    made = post("/conversions/funnels", data={"csrf": shop.csrf, "name": "cart", "steps": "add_to_cart, purchase",
                                               "window": "2h", "mode": "ordered", "unit": "visitor"})
    assert made.status_code == 303
    assert "view_item" not in page(shop, "/funnels", funnel="cart").split("<h1>")[1].split("</p>")[0]
    edited = post("/conversions/funnels", data={"csrf": shop.csrf, "original": "cart",
                                                 "steps": "add_to_cart, begin_checkout, purchase", "window": "3h",
                                                 "mode": "strict", "unit": "visitor"})
    assert edited.status_code == 303
    funnel = parse_definitions(shop.config.read_text(encoding="utf-8")).funnel("cart")
    assert [s.name for s in funnel.steps] == ["add_to_cart", "begin_checkout", "purchase"]
    assert funnel.mode.value == "strict" and funnel.window == timedelta(hours=3)
    assert post("/conversions/funnels/delete", data={"csrf": shop.csrf, "name": "cart"}).status_code == 303
    temporary = post("/conversions/goals", data={"csrf": shop.csrf, "name": "temporary", "kind": "macro",
                                                  "group": "lead", "event": "generate_lead"})
    assert temporary.status_code == 303
    assert post("/conversions/goals/delete", data={"csrf": shop.csrf, "name": "temporary"}).status_code == 303
    definitions = parse_definitions(shop.config.read_text(encoding="utf-8"))
    assert "cart" not in {f.name for f in definitions.funnels}
    assert "temporary" not in {g.name for g in definitions.goals}


def test_editing_keeps_what_the_form_does_not_show() -> None:
    text = """# my goals
goals:
  lead:   # the form
    kind: macro
    type: lead
    match: [{event: generate_lead}, {path: /thanks*}]
  signup:
    kind: micro
    category: secondary_action
    match: {event: sign_up, where: {plan: pro}}   # pro only
funnels:
  f:
    label: Sign-up funnel
    steps: [page_view, signup]
"""
    definitions = parse_definitions(text)
    assert editor.goal_form(definitions.goal("lead"))[1] == "it has several matchers (any of them counts)"
    form, why = editor.goal_form(definitions.goal("signup"))
    assert why is None and form["where"] == "plan = pro"
    edited = editor.edit_text(text, editor.Change("goals", "signup", editor.goal_spec({**form, "label": "Sign-up"})))
    assert edited.startswith("# my goals") and "  lead:   # the form" in edited
    assert parse_definitions(edited).goal("signup").match == definitions.goal("signup").match
    funnel = editor.funnel_form(definitions.funnel("f"))
    edited = editor.edit_text(edited, editor.Change("funnels", "f", editor.funnel_spec({**funnel, "window": "2h"})))
    assert "label: Sign-up funnel" in edited and parse_definitions(edited).funnel("f").window == timedelta(hours=2)
    with pytest.raises(editor.EditError, match="already has a goal 'lead'"):
        editor.edit_text(text, editor.Change("goals", "lead", {"kind": "macro"}, create=True))
    with pytest.raises(editor.EditError, match="letters, digits"):
        editor.check_name("two words", "goal")


@pytest.mark.parametrize(("form", "where"), [
    ({"name": "bad_goal", "kind": "micro", "group": "secondary_action", "event": "x", "value_kind": "fixed",
      "value_amount": "1", "currency": "euro"}, "goals.bad_goal.value.currency"),
    ({"name": "bad_kind", "kind": "micro", "group": "revenue", "event": "x"}, "goals.bad_kind.category"),
    ({"name": "bad_where", "kind": "macro", "group": "lead", "event": "x", "where": "amount > lots"},
     "goals.bad_where.match.where[0]"),
])
def test_a_bad_goal_shows_the_files_error_and_writes_nothing(shop: Shop, form: dict[str, str], where: str) -> None:
    before = shop.config.read_bytes()
    spec = editor.goal_spec(form)
    with pytest.raises(ValueError) as expected:
        parse_definitions(editor.edit_text(before.decode(), editor.Change("goals", form["name"], spec, create=True)),
                          str(shop.config))
    response = shop.client.post("/conversions/goals", data={"csrf": shop.csrf, **form})
    assert response.status_code == 400
    assert str(escape(str(expected.value))) in response.text
    assert f"{shop.config}:" in str(expected.value) and where in str(expected.value)  # file, line, field
    assert shop.config.read_bytes() == before
    assert f'value="{form["name"]}"' in response.text  # the form keeps what was typed


def test_a_bad_funnel_shows_the_files_error(shop: Shop) -> None:
    before = shop.config.read_bytes()
    response = shop.client.post("/conversions/funnels", data={"csrf": shop.csrf, "name": "slow", "steps": "a, b",
                                                               "window": "2 hours"})
    assert response.status_code == 400 and "funnels.slow.window: expected a duration" in response.text
    assert shop.config.read_bytes() == before


def test_a_post_without_the_csrf_token_is_refused(shop: Shop) -> None:
    before = shop.config.read_bytes()
    for path in pages.ACTIONS:
        assert shop.client.post(path, data={"name": "x", "kind": "micro"}).status_code == 403
        assert shop.client.post(path, data={"csrf": "wrong", "name": "x"}).status_code == 403
    assert shop.config.read_bytes() == before


# -- share links -------------------------------------------------------------------------------------------


def share(shop: Shop, path: str) -> str:
    response = shop.client.post("/share", data={"csrf": shop.csrf, "path": path})
    assert response.status_code == 303
    return response.headers["location"].split("token=")[1]


def test_a_share_link_shows_its_page_read_only(shop: Shop) -> None:
    query = f"project={PROJECT}&from={shop.start}&to={shop.end}&breakdown=device_type"
    token = share(shop, f"/conversions?{query}")
    outsider = TestClient(shop.client.app, follow_redirects=False)
    html = outsider.get(f"/s/{token}").text
    assert "shared view · read-only" in html and "Macro and micro conversions" in html
    assert 'method="post"' not in html and "Definitions editor" not in html and "csrf" not in html
    for path in pages.ACTIONS:
        assert outsider.post(path, data={"csrf": shop.csrf, "name": "x"}).status_code == 403
    detail = outsider.get(f"/s/{share(shop, f'/experiments/green_button?{query}')}")
    assert detail.status_code == 200 and "Green checkout button" in detail.text and 'method="post"' not in detail.text
    listing = outsider.get(f"/s/{share(shop, f'/experiments?{query}')}")
    assert listing.status_code == 200 and "Green checkout button" in listing.text
    assert 'href="/experiments/' not in listing.text, "a shared list links to pages its viewer cannot open"
    assert outsider.get("/s/not-a-token").status_code == 404


# -- empty states, first run, login limits, the CLI -------------------------------------------------------


def test_empty_states_say_what_to_do_next(tmp_path: Path) -> None:
    """A project without events, and one with events but no goals, funnels or experiments."""
    config, db = tmp_path / "keystep.yaml", tmp_path / "empty.duckdb"
    with DuckDBBackend(db) as store:
        store.insert_events(event_table([{"visitor_id": "v1", "event": "page_view", "t": 0},
                                         {"visitor_id": "v1", "event": "purchase", "t": 3}], project="shop"))
        keys.create_project(store, "fresh")
    app = create_app(Settings(db=db, definitions=Definitions(), config=config))
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/conversions").headers["location"] == "/setup"  # the first run
        assert client.post("/setup", data={"username": "admin", "password": PASSWORD}).status_code == 303
        for path in ("/", "/conversions", "/funnels", "/micro-macro"):
            assert "No events yet" in client.get(path, params={"project": "fresh"}).text, path
        shop = {"project": "shop"}
        assert "no goals yet" in client.get("/", params=shop).text
        assert "no goals yet" in client.get("/micro-macro", params=shop).text
        funnels = client.get("/funnels", params=shop).text
        assert "No funnel is defined yet" in funnels and "steps=page_view" in funnels
        experiments = client.get("/experiments", params=shop).text
        assert "No experiment is defined yet" in experiments and "keystep experiment create" in experiments
        html = client.get("/conversions", params=shop).text
        assert "No goals yet" in html and "Create goal" in html
        created = client.post("/conversions/goals", params=shop, data={
            "csrf": csrf_of(html), "name": "purchase", "kind": "macro", "group": "revenue", "event": "purchase"})
        assert created.status_code == 303  # the definitions file did not exist: the editor made it
        assert parse_definitions(config.read_text(encoding="utf-8")).goal("purchase").kind.value == "macro"
        assert "no goals yet" not in client.get("/", params=shop).text
        assert "has no micro goal yet" in client.get("/micro-macro", params=shop).text

        for _ in range(auth.LOGIN_ATTEMPTS):
            assert client.post("/login", data={"username": "admin", "password": "wrong password"}).status_code == 401
        limited = client.post("/login", data={"username": "admin", "password": PASSWORD})
        assert limited.status_code == 429 and "Too many failed logins" in limited.text


def test_without_a_definitions_file_path_the_editor_says_so(tmp_path: Path) -> None:
    app = create_app(Settings(db=tmp_path / "x.duckdb", definitions=Definitions(), config=None))
    with TestClient(app, follow_redirects=False) as client:
        client.post("/setup", data={"username": "admin", "password": PASSWORD})
        html = client.get("/conversions").text
        assert "This server has no definitions file path" in html and 'action="/conversions/goals' not in html


def test_user_create_reads_the_password_from_stdin_or_asks_twice(tmp_path: Path) -> None:
    db = tmp_path / "users.duckdb"
    runner = CliRunner()
    made = runner.invoke(cli, ["user", "create", "alice", "--password-stdin", "--db", str(db)],
                         input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    asked = runner.invoke(cli, ["user", "create", "bob", "--db", str(db)], input=f"{PASSWORD}!\n{PASSWORD}!\n")
    assert asked.exit_code == 0, asked.output
    assert asked.output.count("Password") == 1 and "Repeat for confirmation" in asked.output
    again = runner.invoke(cli, ["user", "create", "alice", "--password-stdin", "--db", str(db)],
                          input=PASSWORD + "\n")
    assert again.exit_code == 2 and "exists already" in again.output
    short = runner.invoke(cli, ["user", "create", "carol", "--password-stdin", "--db", str(db)], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    with DuckDBBackend(db) as store:
        assert auth.check_password(store, "alice", PASSWORD)
        assert auth.check_password(store, "bob", PASSWORD + "!")
        assert not auth.check_password(store, "carol", "short")
