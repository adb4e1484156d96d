"""The demo shop simulator: its events are well formed, and their counts recover the analytic truth.

Counting is done here with plain DuckDB SQL on the Arrow table (sessions: the tracker's id, else a new
session after 30 minutes of inactivity), independently of keystep's analysis code. Comparisons allow 4
binomial standard errors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from keystep.backends.duckdb import event_arrow_schema
from keystep.demo.simulator import Simulation, simulate_shop, write_events
from keystep.demo.truth import CHANNELS, DEVICES, FUNNEL_STEPS, GOALS, ShopModel, compute_truth

VISITORS = 20_000

SESSIONS_SQL = """
CREATE TABLE keyed AS
WITH gaps AS (
  SELECT *, CASE WHEN session_id IS NOT NULL THEN 0
                 WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > INTERVAL 30 MINUTE THEN 1
                 ELSE 0 END AS new_session
  FROM ev WINDOW w AS (PARTITION BY visitor_id ORDER BY ts, event_id))
SELECT *, coalesce('s' || session_id, 'n' || visitor_id || '#' || CAST(sum(new_session) OVER (
          PARTITION BY visitor_id ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING) AS VARCHAR)) AS skey,
       CAST(json_extract(properties, '$.session_number') AS INTEGER) AS number
FROM gaps;
CREATE TABLE sessions AS
SELECT skey, any_value(visitor_id) AS visitor_id, any_value(device_type) AS device,
       any_value(channel) AS channel, min(number) AS number,
       count(DISTINCT number) AS numbers, count(DISTINCT channel) AS channels,
       min(ts) AS first_ts, max(ts) AS last_ts,
       count(*) FILTER (event = 'page_view') AS n_page_view,
       count(*) FILTER (event = 'view_item') AS n_view_item,
       min(ts) FILTER (event = 'view_item') AS view_item,
       min(ts) FILTER (event = 'add_to_cart') AS add_to_cart,
       min(ts) FILTER (event = 'begin_checkout') AS begin_checkout,
       min(ts) FILTER (event = 'add_payment_info') AS add_payment_info,
       min(ts) FILTER (event = 'purchase') AS purchase,
       min(ts) FILTER (event = 'newsletter_signup') AS newsletter_signup,
       min(ts) FILTER (event = 'video_complete') AS video_complete,
       min(ts) FILTER (event = 'page_view') AS page_view
FROM keyed GROUP BY skey;
"""


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate_shop(visitors=VISITORS, weeks=3, seed=11)


@pytest.fixture(scope="module")
def db(sim: Simulation) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("ev_arrow", sim.events)
    con.execute("CREATE TABLE ev AS SELECT * FROM ev_arrow")
    con.execute(SESSIONS_SQL)
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def assert_rate(label: str, hits: int, n: int, p: float, k: float = 4.0) -> None:
    """hits / n is p within k binomial standard errors."""
    assert n > 0, label
    se = math.sqrt(max(p * (1 - p), 1e-12) / n)
    observed = hits / n
    assert abs(observed - p) <= k * se, (
        f"{label}: observed {observed:.4f} ({hits}/{n}), expected {p:.4f} ± {k}×{se:.4f}")


def assert_mean(label: str, mean: float, sd: float, n: int, expected: float, k: float = 4.0) -> None:
    se = sd / math.sqrt(n)
    assert abs(mean - expected) <= k * se, (
        f"{label}: observed {mean:.4f}, expected {expected:.4f} ± {k}×{se:.4f}")


# -- shape ---------------------------------------------------------------------------------------
def test_schema_is_the_canonical_one(sim: Simulation) -> None:
    assert sim.events.schema.equals(event_arrow_schema())
    assert sim.events.num_rows > 5 * VISITORS


def test_columns_are_filled_as_documented(db: duckdb.DuckDBPyConnection, sim: Simulation) -> None:
    n = sim.events.num_rows
    assert one(db, "SELECT count(DISTINCT event_id) FROM ev") == n
    assert one(db, "SELECT count(*) FROM ev WHERE project = 'demo'") == n
    assert one(db, "SELECT count(*) FROM ev WHERE json_valid(properties)") == n
    assert one(db, "SELECT count(*) FROM ev WHERE received_at < ts") == 0
    assert set(r[0] for r in db.execute("SELECT DISTINCT event FROM ev").fetchall()) == set(GOALS)
    assert set(r[0] for r in db.execute("SELECT DISTINCT device_type FROM ev").fetchall()) == set(DEVICES)
    assert set(r[0] for r in db.execute("SELECT DISTINCT channel FROM ev").fetchall()) == set(CHANNELS)
    start, end = sim.start.replace(tzinfo=None), sim.end.replace(tzinfo=None)
    assert one(db, "SELECT count(*) FROM ev WHERE ts < ? OR ts >= ?", [start, end]) == 0
    # revenue and currency on purchases only, each with its own transaction id
    assert one(db, "SELECT count(*) FROM ev WHERE (revenue IS NOT NULL) <> (event = 'purchase')") == 0
    assert one(db, "SELECT count(*) FROM ev WHERE (currency = 'EUR') <> (event = 'purchase')") == 0
    assert one(db, "SELECT count(*) FROM ev WHERE currency IS NOT NULL AND currency <> 'EUR'") == 0
    purchases = one(db, "SELECT count(*) FROM ev WHERE event = 'purchase'")
    assert one(db, "SELECT count(DISTINCT json_extract_string(properties, '$.transaction_id')) FROM ev "
                   "WHERE event = 'purchase'") == purchases
    assert one(db, "SELECT count(*) FROM ev WHERE event IN ('view_item', 'add_to_cart', 'purchase') "
                   "AND json_extract_string(properties, '$.item_id') IS NULL") == 0
    # device, browser, os, country are the visitor's
    assert one(db, "SELECT max(k) FROM (SELECT count(DISTINCT (device_type, browser, os, country)) AS k "
                   "FROM ev GROUP BY visitor_id)") == 1
    assert one(db, "SELECT count(*) FROM ev WHERE url <> 'https://shop.example' || path "
                   "AND NOT starts_with(url, 'https://shop.example' || path || '?utm_')") == 0


def test_channels_follow_the_default_channel_grouping(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT DISTINCT channel, referrer, utm_source, utm_medium, utm_campaign IS NOT NULL FROM ev"
    ).fetchall()
    for channel, referrer, source, medium, campaign in rows:
        ref = referrer or ""
        if channel == "Direct":
            assert (referrer, source, medium, campaign) == (None, None, None, False)
        elif channel == "Organic Search":
            assert ("google" in ref or "bing" in ref) and medium is None
        elif channel == "Paid Search":
            assert (source, medium, campaign) == ("google", "cpc", True)
        elif channel == "Organic Social":
            assert ("facebook" in ref or "instagram" in ref) and medium is None
        elif channel == "Paid Social":
            assert medium == "paid_social" and campaign
        elif channel == "Email":
            assert (source, medium, campaign) == ("newsletter", "email", True)
        else:
            assert channel == "Referral" and referrer and medium is None
            assert not any(s in ref for s in ("google", "bing", "facebook", "instagram"))


def test_deterministic_for_a_seed() -> None:
    a = simulate_shop(visitors=1_500, weeks=1, seed=3)
    b = simulate_shop(visitors=1_500, weeks=1, seed=3)
    c = simulate_shop(visitors=1_500, weeks=1, seed=4)
    assert a.events.equals(b.events)
    assert not a.events.equals(c.events)


def test_write_events_round_trips(sim: Simulation, tmp_path: Path) -> None:
    path = write_events(sim, tmp_path / "demo.parquet")
    assert pq.read_table(path).equals(sim.events)


# -- sessions and order ------------------------------------------------------------------------
def test_inactivity_sessions_match_the_simulated_ones(db: duckdb.DuckDBPyConnection) -> None:
    # a visitor's tracker sends a session id on all of its events or on none
    assert one(db, "SELECT count(*) FROM (SELECT visitor_id FROM ev GROUP BY visitor_id "
                   "HAVING count(session_id) NOT IN (0, count(*)))") == 0
    # every derived session is one simulated session (one session_number, one channel) ...
    assert one(db, "SELECT max(numbers), max(channels) FROM sessions") == (1, 1)
    # ... and no simulated session is split
    assert one(db, "SELECT count(*) FROM (SELECT visitor_id, number FROM sessions GROUP BY ALL "
                   "HAVING count(*) > 1)") == 0
    # sessions numbered 1..k per visitor, at least 30 minutes apart; events within < 30 minutes
    assert one(db, "SELECT count(*) FROM (SELECT visitor_id FROM sessions GROUP BY visitor_id "
                   "HAVING max(number) <> count(*) OR min(number) <> 1)") == 0
    assert one(db, "SELECT count(*) FROM (SELECT first_ts - lag(last_ts) OVER (PARTITION BY visitor_id "
                   "ORDER BY number) AS gap FROM sessions) WHERE gap <= INTERVAL 30 MINUTE") == 0
    assert one(db, "SELECT count(*) FROM (SELECT ts - lag(ts) OVER (PARTITION BY skey ORDER BY ts) AS gap "
                   "FROM keyed) WHERE gap >= INTERVAL 30 MINUTE") == 0
    untracked = one(db, "SELECT count(DISTINCT visitor_id) FROM ev WHERE session_id IS NULL")
    assert_rate("visitors without session ids", untracked, VISITORS, ShopModel().untracked_share)


def test_funnel_steps_follow_each_other_within_a_session(db: duckdb.DuckDBPyConnection) -> None:
    for prev, step in itertools.pairwise(FUNNEL_STEPS):
        assert one(db, f"SELECT count(*) FROM sessions WHERE {step} IS NOT NULL "
                       f"AND ({prev} IS NULL OR {prev} >= {step})") == 0, (prev, step)
    # secondary actions come before the add to cart they influence; the video after a product view
    assert one(db, "SELECT count(*) FROM sessions WHERE newsletter_signup >= add_to_cart") == 0
    assert one(db, "SELECT count(*) FROM sessions WHERE video_complete IS NOT NULL "
                   "AND (view_item IS NULL OR video_complete <= view_item "
                   "OR video_complete >= add_to_cart)") == 0
    # each session starts with a page view; the funnel completes within an hour of the first product view
    assert one(db, "SELECT count(*) FROM sessions WHERE page_view <> first_ts") == 0
    assert one(db, "SELECT count(*) FROM sessions WHERE purchase - view_item >= INTERVAL 1 HOUR") == 0


def test_later_sessions_convert_days_after_the_first(db: duckdb.DuckDBPyConnection) -> None:
    late = one(db, "SELECT count(*) FROM sessions s JOIN sessions f ON f.visitor_id = s.visitor_id "
                   "AND f.number = 1 WHERE s.number > 1 AND s.purchase - f.first_ts > INTERVAL 1 DAY")
    assert late > 20


# -- the counts recover the truth ---------------------------------------------------------------
def test_truth_is_internally_consistent() -> None:
    truth = compute_truth()
    for device in ("all", *DEVICES):
        rate = truth.funnel_entry[device] * math.prod(truth.funnel_step_conversion[device])
        rates = truth.session_rate if device == "all" else truth.session_rate_by_device[device]
        target = rates["purchase"]
        assert rate == pytest.approx(target)
    for micro, split in truth.purchase_split.items():
        share = truth.session_rate[micro]
        assert share * split.with_action + (1 - share) * split.without_action == pytest.approx(
            truth.session_rate["purchase"])
    model = truth.model
    assert truth.funnel_step_conversion["mobile"][2] == pytest.approx(model.add_payment_info["mobile"])
    assert truth.funnel_step_conversion["desktop"][2] == pytest.approx(model.add_payment_info["desktop"])
    assert truth.purchase_split["newsletter_signup"].lift > 0.5
    assert truth.purchase_split["video_complete"].lift > 1.0
    by_channel = truth.session_rate_by_channel
    assert by_channel["Email"]["purchase"] > by_channel["Direct"]["purchase"]
    assert 0 < truth.returning_purchase_share < 1
    assert truth.visitor_purchase_rate > truth.session_rate["purchase"]
    # without the effect the sign-up carries no lift, once it is no longer confounded with the channel
    no_effect = ShopModel(newsletter_multiplier=1.0)
    assert compute_truth(no_effect).purchase_split["newsletter_signup"].lift < 0  # Email: few sign-ups
    flat = ShopModel(newsletter_multiplier=1.0, newsletter=dict.fromkeys(CHANNELS, 0.04))
    assert compute_truth(flat).purchase_split["newsletter_signup"].lift == pytest.approx(0.0, abs=1e-12)


def test_session_goal_rates(db: duckdb.DuckDBPyConnection, sim: Simulation) -> None:
    n = one(db, "SELECT count(*) FROM sessions")
    for goal in GOALS:
        hits = one(db, f"SELECT count(*) FROM sessions WHERE {goal} IS NOT NULL")
        assert_rate(goal, hits, n, sim.truth.session_rate[goal])
    for device in DEVICES:
        n_d = one(db, "SELECT count(*) FROM sessions WHERE device = ?", [device])
        hits = one(db, "SELECT count(*) FROM sessions WHERE device = ? AND purchase IS NOT NULL", [device])
        assert_rate(f"purchase on {device}", hits, n_d, sim.truth.session_rate_by_device[device]["purchase"])
    for channel in CHANNELS:
        n_c = one(db, "SELECT count(*) FROM sessions WHERE channel = ?", [channel])
        for goal in ("view_item", "add_to_cart", "purchase"):
            hits = one(db, f"SELECT count(*) FROM sessions WHERE channel = ? AND {goal} IS NOT NULL",
                       [channel])
            assert_rate(f"{goal} from {channel}", hits, n_c, sim.truth.session_rate_by_channel[channel][goal])


def test_funnel_step_conversion_by_device(db: duckdb.DuckDBPyConnection, sim: Simulation) -> None:
    for device in ("all", *DEVICES):
        where = "TRUE" if device == "all" else f"device = '{device}'"
        n = one(db, f"SELECT count(*) FROM sessions WHERE {where}")
        entered = one(db, f"SELECT count(*) FROM sessions WHERE {where} AND view_item IS NOT NULL")
        assert_rate(f"{device} view_item", entered, n, sim.truth.funnel_entry[device])
        for (prev, step), p in zip(itertools.pairwise(FUNNEL_STEPS),
                                   sim.truth.funnel_step_conversion[device], strict=True):
            base = one(db, f"SELECT count(*) FROM sessions WHERE {where} AND {prev} IS NOT NULL")
            hits = one(db, f"SELECT count(*) FROM sessions WHERE {where} AND {step} IS NOT NULL")
            assert_rate(f"{device} {prev} → {step}", hits, base, p)


def test_purchase_rate_with_and_without_micro_conversions(db: duckdb.DuckDBPyConnection,
                                                          sim: Simulation) -> None:
    for micro in ("newsletter_signup", "video_complete", "view_item", "add_to_cart"):
        split = sim.truth.purchase_split[micro]
        for did, p in ((True, split.with_action), (False, split.without_action)):
            cond = f"{micro} IS {'NOT ' if did else ''}NULL"
            n, hits = one(db, f"SELECT count(*), count(purchase) FROM sessions WHERE {cond}")
            assert_rate(f"purchase | {cond}", hits, n, p)


def test_visitor_level_truth(db: duckdb.DuckDBPyConnection, sim: Simulation) -> None:
    truth = sim.truth
    mean, sd = one(db, "SELECT avg(k), stddev_samp(k) FROM "
                       "(SELECT count(*) AS k FROM sessions GROUP BY visitor_id)")
    assert_mean("sessions per visitor", mean, sd, VISITORS, truth.sessions_per_visitor)
    buyers = one(db, "SELECT count(DISTINCT visitor_id) FROM sessions WHERE purchase IS NOT NULL")
    assert_rate("visitors who purchase", buyers, VISITORS, truth.visitor_purchase_rate)
    for device in DEVICES:
        n, hits = one(db, "SELECT count(*), count(p) FROM (SELECT visitor_id, any_value(device) AS d, "
                          "max(purchase) AS p FROM sessions GROUP BY visitor_id) WHERE d = ?", [device])
        assert_rate(f"visitors on {device} who purchase", hits, n,
                    truth.visitor_purchase_rate_by_device[device])
    purchases, returning = one(db, "SELECT count(purchase), count(purchase) FILTER (number > 1) "
                                   "FROM sessions")
    assert_rate("purchases in returning sessions", returning, purchases, truth.returning_purchase_share)
    mobile = one(db, "SELECT count(DISTINCT visitor_id) FROM ev WHERE device_type = 'mobile'")
    assert_rate("mobile visitors", mobile, VISITORS, truth.model.device_share["mobile"])


def test_counts_per_session_and_revenue(db: duckdb.DuckDBPyConnection, sim: Simulation) -> None:
    truth = sim.truth
    for event in ("page_view", "view_item"):
        n, mean, sd = one(db, f"SELECT count(*), avg(n_{event}), stddev_samp(n_{event}) FROM sessions")
        assert_mean(f"{event} per session", mean, sd, n, truth.events_per_session[event])
    n, mean, sd = one(db, "SELECT count(*), avg(revenue), stddev_samp(revenue) FROM ev "
                          "WHERE event = 'purchase'")
    assert_mean("order value", mean, sd, n, truth.mean_order_value)
    assert one(db, "SELECT min(revenue) FROM ev") > 0
