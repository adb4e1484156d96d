"""`keystep serve --workers N`: the pipeline in worker processes, with the same guarantees as one process;
and the spool records the writer reads (Arrow, and the JSON records of earlier versions)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from keystep.backends.base import SQL
from keystep.backends.duckdb import DuckDBBackend
from keystep.collector.record import decode_record, encode_record
from keystep.collector.spool import Spool
from keystep.collector.writer import Writer

from .server import Server, Site, make_site, serving, stored
from .test_durability import BATCH, run_load

WORKERS = ("--workers", "2")
pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes in /proc")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def segment_batch(ids: list[str]) -> dict[str, object]:
    return {"batch": [{"type": "track", "event": "Product Viewed", "messageId": i, "anonymousId": "a1",
                       "timestamp": "2026-12-01T12:00:00Z", "properties": {"product_id": "p1"},
                       "context": {"page": {"url": "https://shop.example/p/1?utm_source=google&utm_medium=cpc"}}}
                      for i in ids]}


def test_workers_store_what_they_acknowledge_with_the_same_replies(site: Site) -> None:
    with serving(site, *WORKERS) as server:
        workers = children(server.process.pid)
        assert len(workers) == 2
        native = httpx.post(server.url + "/api/collect", headers={"Authorization": f"Bearer {site.write_key}"},
                            json={"batch": [{"event": "page_view", "event_id": "n1", "visitor_id": "v1",
                                             "url": "https://shop.example/a?gclid=x"},
                                            {"visitor_id": "v2"}]})
        assert native.status_code == 200
        assert native.json()["accepted"] == 1
        assert [r["reason"] for r in native.json()["rejected"]] == ["missing_event"]
        segment = httpx.post(server.url + "/v1/batch", auth=(site.write_key, ""), json=segment_batch(["s1", "s2"]))
        assert segment.status_code == 200 and segment.json()["success"] is True and segment.json()["accepted"] == 2
        assert httpx.post(server.url + "/api/collect", json={"event": "x", "visitor_id": "v"},
                          headers={"Authorization": "Bearer ks_w_unknown"}).status_code == 401
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200
        metrics = httpx.get(server.url + "/metrics").text
        assert 'events_accepted_total{route="/v1/batch"} 2.0' in metrics
        assert 'events_rejected_total{reason="missing_event"} 1.0' in metrics
        took = server.stop(signal.SIGTERM)
        assert took < 30
        for pid in workers:  # the workers stop with the server
            for _ in range(50):
                if not alive(pid):
                    break
                time.sleep(0.1)
            assert not alive(pid)
    rows = {r["event_id"]: r for r in stored(site)}
    assert set(rows) == {"n1", "s1", "s2"}
    assert (rows["n1"]["path"], rows["n1"]["channel"]) == ("/a", "Paid Search")
    assert json.loads(rows["n1"]["properties"]) == {"click_id_type": "gclid", "click_id": "x"}
    assert (rows["s1"]["event"], rows["s1"]["utm_source"], rows["s1"]["channel"]) == ("view_item", "google",
                                                                                        "Paid Search")
    rejected = stored(site, "SELECT reason, location FROM rejected_events")
    assert [r["location"] for r in rejected] == ["batch index 1"]


def test_kill_9_with_workers_loses_nothing_acknowledged(site: Site) -> None:
    server = Server(site, *WORKERS)
    workers = children(server.process.pid)
    acknowledged, stop, threads = run_load(server, site.write_key, seconds=3.0)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    snapshot = set(acknowledged)
    assert len(snapshot) > 10 * BATCH
    for pid in workers:  # orphaned workers see their socket close and exit
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.1)
        assert not alive(pid), "a worker outlived the killed server"
    with serving(site, *WORKERS):  # the restart stores what the spool holds before it is ready
        pass
    ids = [r["event_id"] for r in stored(site, "SELECT event_id FROM events")]
    assert len(ids) == len(set(ids))
    assert snapshot <= set(ids), f"{len(snapshot - set(ids))} acknowledged events were lost"


def test_a_worker_that_dies_is_replaced_and_nothing_acknowledged_is_lost(site: Site) -> None:
    server = Server(site, *WORKERS)
    try:
        acknowledged, stop, threads = run_load(server, site.write_key, seconds=1.0)
        victim = children(server.process.pid)[0]
        os.kill(victim, signal.SIGKILL)  # its requests in flight get 503: not acknowledged
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        for _ in range(200):
            replaced = [p for p in children(server.process.pid) if p != victim]
            if len(replaced) == 2 and httpx.get(server.url + "/readyz").status_code == 200:
                break
            time.sleep(0.1)
        assert len(replaced) == 2
        after = httpx.post(server.url + "/api/collect", headers={"Authorization": f"Bearer {site.write_key}"},
                           json={"batch": [{"event": "page_view", "event_id": f"after-{i}", "visitor_id": "v"}
                                           for i in range(10)]})
        assert after.status_code == 200 and after.json()["accepted"] == 10
    finally:
        server.stop(signal.SIGTERM)
    ids = {r["event_id"] for r in stored(site, "SELECT event_id FROM events")}
    assert acknowledged <= ids
    assert {f"after-{i}" for i in range(10)} <= ids


def test_a_worker_trusts_a_write_key_only_as_long_as_the_server_would() -> None:
    """A worker knows the project of a key for `KEY_TTL` seconds from the server's look-up in the store (so a
    revoked key stops working there as soon as in the server); past that, or for a key it never heard of,
    it asks. The key sent with a task always holds for that task."""
    from keystep.collector.ingest import UnknownKey
    from keystep.collector.keys import KEY_TTL
    from keystep.collector.workers import _KeyTable

    table = _KeyTable()
    with pytest.raises(UnknownKey) as unknown:
        table.project("ks_w_new")
    assert unknown.value.key == "ks_w_new"
    table.learn(("ks_w_new", "shop", 0.0))  # the task the server sent again, with the key
    assert table.project("ks_w_new") == "shop"
    table.learn(("ks_w_gone", None, 0.0))
    assert table.project("ks_w_gone") is None  # no such key: the server said so; 401
    table.learn(None)  # a later task
    assert table.project("ks_w_new") == "shop" and table.project("ks_w_gone") is None
    table.learn(("ks_w_old", "shop", KEY_TTL))  # looked up by the server a whole KEY_TTL ago
    assert table.project("ks_w_old") == "shop"  # for this task
    table.learn(None)
    with pytest.raises(UnknownKey):
        table.project("ks_w_old")  # but not for the next one


# -- the spool records ------------------------------------------------------------------------------


def canonical(event_id: str, received_at: datetime) -> dict[str, object]:
    row: dict[str, object] = {name: None for name in (
        "user_id", "session_id", "url", "path", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
        "utm_content", "channel", "device_type", "browser", "os", "country", "revenue", "currency")}
    row.update(project="shop", event_id=event_id, ts=datetime(2026, 12, 1, 12), received_at=received_at,
               event="page_view", visitor_id="v1", properties='{"a": 1}', revenue=9.5)
    return row


def test_a_record_round_trips_events_rejections_and_identities() -> None:
    now = datetime(2026, 12, 1, 12, 0, 1)
    rejected = [{"project": "shop", "received_at": now, "source": "/api/collect", "location": "batch index 3",
                 "field": "event", "reason": "missing", "raw": "{}"}]
    identities = [{"project": "shop", "visitor_id": "v1", "user_id": "u1", "ts": now, "source": "event"}]
    record = decode_record(encode_record([canonical("e1", now), canonical("e2", now)], rejected, identities))
    assert record.events is not None and record.events.column("event_id").to_pylist() == ["e1", "e2"]
    assert record.events.column("ts").to_pylist() == [datetime(2026, 12, 1, 12)] * 2
    assert record.rejected == rejected and record.identities == identities
    empty = decode_record(encode_record([], rejected))
    assert empty.events is None and empty.rejected == rejected


def test_json_records_of_earlier_versions_are_still_stored(tmp_path: Path) -> None:
    """A spool left by an older keystep (records as one JSON object, times in epoch microseconds)."""
    micros = int((datetime(2026, 12, 1, 12) - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    old = {**canonical("old-1", datetime(2026, 12, 1, 12)), "ts": micros, "received_at": micros}
    legacy = orjson.dumps({"events": [old], "rejected": [], "identities": [
        {"project": "shop", "visitor_id": "v1", "user_id": "u1", "ts": micros, "source": "identify"}]})
    spool = Spool(tmp_path / "spool")
    spool.append(legacy).result()
    spool.append(encode_record([canonical("new-1", datetime(2026, 12, 1, 12, 0, 5))])).result()
    with DuckDBBackend(tmp_path / "k.duckdb") as store:
        Writer(spool, store).drain()
        rows = store.execute(SQL("SELECT event_id, ts, revenue FROM events ORDER BY event_id")).rows
        links = store.execute(SQL("SELECT visitor_id, user_id, ts FROM identities")).rows
    spool.close()
    assert [tuple(r) for r in rows] == [("new-1", datetime(2026, 12, 1, 12), 9.5),
                                        ("old-1", datetime(2026, 12, 1, 12), 9.5)]
    assert [tuple(r) for r in links] == [("v1", "u1", datetime(2026, 12, 1, 12))]


def test_a_value_no_column_takes_rejects_that_event_alone() -> None:
    """Should a step leave a value its column cannot take, the event is rejected, not the request, and the
    spool never holds a record the writer cannot store."""
    from keystep.collector.ingest import compute_record, default_steps
    from keystep.collector.pipeline import Context, Drop, Incoming
    from keystep.collector.wire import Parsed

    def faulty(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
        if event.get("visitor_id") == "bad":
            event["browser"] = object()  # no step does this; a bug in one would
        return event

    steps = default_steps()
    context = Context(project="shop", received_at=datetime(2026, 12, 1, 12), route="/api/collect")
    parsed = Parsed([{"event": "a", "visitor_id": "good", "event_id": "1"},
                     {"event": "b", "visitor_id": "bad", "event_id": "2"},
                     {"event": "c", "visitor_id": "good", "event_id": "3"}])
    ingested = compute_record(parsed, context, (*steps[:-1], faulty, steps[-1]))
    assert [e["event_id"] for e in ingested.outcome.accepted] == ["1", "3"]
    assert [(r.index, r.drop.reason) for r in ingested.outcome.rejected] == [(1, "unreadable_event")]
    assert ingested.record is not None
    record = decode_record(ingested.record)
    assert record.events is not None and record.events.column("event_id").to_pylist() == ["1", "3"]
    assert [r["location"] for r in record.rejected] == ["batch index 1"]
