"""The native route on a live server: batches with bad items, keys, limits, duplicates, the query API."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from keystep.analysis.conversions import run_conversions
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import parse_definitions
from keystep.query import Query
from keystep.serialize import to_data

from .server import Site, make_site, properties, serving, stored

CONFIG = """
goals:
  view_item: {kind: micro, category: process_milestone, match: view_item}
  purchase: {kind: macro, type: revenue, match: purchase, value: {from: revenue, currency: EUR}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path, CONFIG)


def post(url: str, body: object, key: str | None, **headers: str) -> httpx.Response:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(url + "/api/collect", content=json.dumps(body), headers=headers, timeout=10)


def test_a_batch_keeps_its_valid_events_and_names_the_bad_ones(site: Site) -> None:
    batch = {"batch": [
        {"event": "view_item", "event_id": "e1", "visitor_id": "v1", "ts": "2026-12-01T10:00:00Z",
         "url": "https://shop.example/p/1?utm_source=news&utm_medium=email", "properties": {"item_id": "p1"}},
        {"visitor_id": "v2"},
        "not an event",
        {"event": "purchase", "event_id": "e2", "visitor_id": "v1", "ts": 1764583260, "revenue": "30.5",
         "currency": "eur"},
        {"event": "purchase", "visitor_id": "v1", "ts": "yesterday"},
        {"event": "purchase", "visitor_id": "v1", "revenue": "lots"},
    ]}
    with serving(site) as server:
        reply = post(server.url, batch, site.write_key)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["accepted"] == 2
        assert [(r["index"], r["reason"], r["field"]) for r in body["rejected"]] == [
            (1, "missing_event", "event"), (2, "unreadable_item", None), (4, "invalid_timestamp", "ts"),
            (5, "invalid_revenue", "revenue")]
    events = stored(site, "SELECT * FROM events ORDER BY event_id")
    assert [(e["project"], e["event_id"], e["event"], e["visitor_id"]) for e in events] == [
        ("shop", "e1", "view_item", "v1"), ("shop", "e2", "purchase", "v1")]
    assert events[0]["ts"] == datetime(2026, 12, 1, 10, 0, 0)
    assert events[1]["ts"] == datetime(2025, 12, 1, 10, 1, 0)  # epoch seconds
    assert (events[0]["path"], events[0]["utm_source"], events[0]["utm_medium"]) == ("/p/1", "news", "email")
    assert properties(events[0])["item_id"] == "p1"
    assert (events[1]["revenue"], events[1]["currency"]) == (30.5, "EUR")
    rejected = stored(site, "SELECT * FROM rejected_events ORDER BY location")
    assert [(r["location"], r["source"]) for r in rejected] == [
        ("batch index 1", "/api/collect"), ("batch index 2", "/api/collect"), ("batch index 4", "/api/collect"),
        ("batch index 5", "/api/collect")]
    assert json.loads(rejected[2]["raw"]) == batch["batch"][4]


def test_clock_skew_is_corrected_from_sent_at(site: Site) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    slow = now - timedelta(hours=1)  # a client whose clock is an hour behind
    batch = {"sent_at": slow.isoformat() + "Z", "batch": [
        {"event": "a", "event_id": "skewed", "visitor_id": "v", "ts": (slow - timedelta(minutes=5)).isoformat()},
        {"event": "a", "event_id": "future", "visitor_id": "v", "ts": (slow + timedelta(days=2)).isoformat()},
    ]}
    near = {"sent_at": (now - timedelta(seconds=20)).isoformat(), "batch": [
        {"event": "a", "event_id": "near", "visitor_id": "v", "ts": (now - timedelta(seconds=30)).isoformat()}]}
    with serving(site) as server:
        reply = post(server.url, batch, site.write_key).json()
        assert reply["accepted"] == 2 and [w["index"] for w in reply["warnings"]] == [1]
        assert post(server.url, near, site.write_key).json()["accepted"] == 1
    got = {e["event_id"]: e for e in stored(site)}
    # shifted by the hour the client's clock was off (within the request's own few seconds of delay)
    assert abs(got["skewed"]["ts"] - (now - timedelta(minutes=5))) < timedelta(seconds=30)
    # more than 23 h ahead even after the correction: clamped to the receive time
    assert got["future"]["ts"] == got["future"]["received_at"]
    # a skew under 150 s is left alone
    assert got["near"]["ts"] == now - timedelta(seconds=30)


def test_malformed_json_and_keys(site: Site) -> None:
    event = {"event": "view_item", "visitor_id": "v1"}
    with serving(site) as server:
        bad = httpx.post(server.url + "/api/collect", content=b"{not json", headers={
            "Authorization": f"Bearer {site.write_key}"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        assert post(server.url, event, None).status_code == 401
        assert post(server.url, event, "ks_w_unknown").status_code == 401
        assert post(server.url, event, site.read_key).status_code == 403
        # the key may also come in a header of its own, the query string or the body (sendBeacon)
        assert httpx.post(server.url + "/api/collect", json=event, headers={"X-Keystep-Key": site.write_key}
                          ).json()["accepted"] == 1
        assert httpx.post(server.url + f"/api/collect?key={site.write_key}", json=event).json()["accepted"] == 1
        assert httpx.post(server.url + "/api/collect", json={**event, "key": site.write_key}).json()["accepted"] == 1
        # the ingest routes skip FastAPI's routing, not the app's middleware or its answer to another method
        assert bad.headers["x-content-type-options"] == "nosniff" and bad.headers["content-type"] == "application/json"
        other = httpx.get(server.url + "/api/collect")
        assert (other.status_code, other.headers["allow"]) == (405, "POST")
        assert other.json() == {"detail": "Method Not Allowed"}
    # without an id or a timestamp, each is its own occurrence (received at its own time)
    assert len(stored(site)) == 3


def test_body_limits(site: Site) -> None:
    def padded(size: int) -> bytes:
        """A batch of small events whose JSON is exactly `size` bytes."""
        items = [{"event": "view_item", "visitor_id": f"v{i}", "properties": {"pad": "x" * 900}} for i in range(1100)]
        text = json.dumps({"batch": items})
        while len(text) > size:
            items.pop()
            text = json.dumps({"batch": items})
        items[-1]["properties"]["pad"] += "y" * (size - len(text))
        out = json.dumps({"batch": items}).encode()
        assert len(out) == size
        return out

    mib = 1 << 20
    headers = {"Authorization": f"Bearer {site.write_key}"}
    with serving(site) as server:
        over = httpx.post(server.url + "/api/collect", content=padded(mib + 1), headers=headers)
        assert over.status_code == 413
        under = httpx.post(server.url + "/api/collect", content=padded(mib - 1), headers=headers)
        assert under.status_code == 200 and not under.json()["rejected"]
        # one event over 32 KiB is rejected alone
        big = {"batch": [{"event": "view_item", "visitor_id": "big", "properties": {"pad": "x" * (33 << 10)}},
                         {"event": "view_item", "visitor_id": "small"}]}
        reply = post(server.url, big, site.write_key).json()
        assert reply["accepted"] == 1 and [r["reason"] for r in reply["rejected"]] == ["event_too_large"]
        # a gzip body that inflates past 5 MiB is refused (it is 5 KiB on the wire)
        bomb = gzip.compress(b"[" + b" " * (6 << 20) + b"]")
        assert len(bomb) < mib
        refused = httpx.post(server.url + "/api/collect", content=bomb,
                             headers={**headers, "Content-Encoding": "gzip"})
        assert refused.status_code == 413 and "inflates past" in refused.json()["error"]
        fine = httpx.post(server.url + "/api/collect", content=gzip.compress(json.dumps(big["batch"][1]).encode()),
                          headers={**headers, "Content-Encoding": "gzip"})
        assert fine.json()["accepted"] == 1
    assert not stored(site, "SELECT * FROM events WHERE visitor_id = 'big'")


def test_the_same_id_is_stored_once_even_after_a_restart(site: Site) -> None:
    event = {"event": "purchase", "event_id": "order-1", "visitor_id": "v1", "revenue": 10}
    with serving(site) as server:
        assert post(server.url, event, site.write_key).json()["accepted"] == 1
        assert post(server.url, event, site.write_key).json()["accepted"] == 1  # acknowledged, deduplicated
    with serving(site) as server:
        assert post(server.url, {**event, "revenue": 99}, site.write_key).json()["accepted"] == 1
        assert post(server.url, event, site.other_write_key).json()["accepted"] == 1  # another project
    rows = stored(site, "SELECT project, event_id, revenue FROM events ORDER BY project")
    assert rows == [{"project": "other", "event_id": "order-1", "revenue": 10.0},
                    {"project": "shop", "event_id": "order-1", "revenue": 10.0}]


def test_overload_answers_503_with_retry_after_and_stores_nothing(site: Site) -> None:
    with serving(site, "--max-pending-mb", "0") as server:
        reply = post(server.url, {"event": "view_item", "visitor_id": "v1"}, site.write_key)
        assert reply.status_code == 503 and reply.headers["Retry-After"].isdigit()
    assert stored(site) == []


def test_a_lone_surrogate_escape_is_replaced_not_the_body_refused(site: Site) -> None:
    batch = {"batch": [{"event": "view_item", "visitor_id": "v1", "event_id": "e1", "properties": {"note": "a\ud800b"}},
                       {"event": "view_item", "visitor_id": "v2", "event_id": "e2"}]}
    assert "\\ud800" in json.dumps(batch)  # sent as JSON's escape, which orjson alone refuses
    with serving(site) as server:
        assert post(server.url, batch, site.write_key).json()["accepted"] == 2
        refused = httpx.post(server.url + "/api/collect", content='{"event": "x\\ud800", "n": NaN}',
                             headers={"Authorization": f"Bearer {site.write_key}"})
        assert refused.status_code == 400  # NaN is still no JSON
    rows = stored(site, "SELECT event_id, properties FROM events ORDER BY event_id")
    assert [r["event_id"] for r in rows] == ["e1", "e2"]
    assert json.loads(rows[0]["properties"])["note"] == "a\ufffdb"


def test_flow_control_holds_a_request_until_the_writer_stored_what_waits(site: Site) -> None:
    first = {"batch": [{"event": "view_item", "visitor_id": f"v{i}", "session_id": f"s{i}"} for i in range(3)]}
    with serving(site, "--hold-pending-mb", "0") as server:
        assert post(server.url, first, site.write_key).json()["accepted"] == 3
        # the writer lingers up to a second for more before it stores; the second request waits for that
        assert post(server.url, {"event": "view_item", "visitor_id": "v9"}, site.write_key).json()["accepted"] == 1
        body = httpx.get(server.url + "/api/v1/conversions", headers={"Authorization": f"Bearer {site.read_key}"})
        goals = [g for group in body.json()["groups"] for g in group["goals"]]
        assert goals[0]["total"]["eligible_units"] >= 3
    assert len(stored(site)) == 4


def test_the_query_api_sees_only_its_project(site: Site) -> None:
    shop = [{"event": "view_item", "visitor_id": f"v{i}", "session_id": f"s{i}", "ts": "2026-12-01T10:00:00Z"}
            for i in range(4)]
    shop.append({"event": "purchase", "visitor_id": "v1", "session_id": "s1", "ts": "2026-12-01T10:05:00Z",
                 "revenue": 25})
    with serving(site) as server:
        assert post(server.url, {"batch": shop}, site.write_key).json()["accepted"] == 5
        assert post(server.url, {"batch": shop[:2]}, site.other_write_key).json()["accepted"] == 2
        server_wait_stored(server.url, site.read_key, 4)
        api = httpx.get(server.url + "/api/v1/conversions", headers={"Authorization": f"Bearer {site.read_key}"})
        assert api.status_code == 200
        assert httpx.get(server.url + "/api/v1/conversions").status_code == 401
        assert httpx.get(server.url + "/api/v1/conversions",
                         headers={"Authorization": f"Bearer {site.write_key}"}).status_code == 403
        assert httpx.get(server.url + "/openapi.json").json()["paths"]["/api/v1/funnel"]
    definitions = parse_definitions(CONFIG)
    with DuckDBBackend(site.db, read_only=True) as store:
        expected = to_data(run_conversions(store, definitions, Query(project="shop")))
    assert api.json() == expected
    assert expected["groups"][0]["goals"][0]["total"]["eligible_units"] == 4  # not the other project's


def server_wait_stored(url: str, read_key: str, sessions: int) -> None:
    """Wait until the writer stored the events (the spool is drained asynchronously)."""
    import time

    for _ in range(100):
        body = httpx.get(url + "/api/v1/conversions", headers={"Authorization": f"Bearer {read_key}"}).json()
        goals = [g for group in body["groups"] for g in group["goals"]]
        if goals and goals[0]["total"]["eligible_units"] >= sessions:
            return
        time.sleep(0.05)
    raise AssertionError("the events were not stored in time")
