"""Nothing acknowledged is ever lost: `kill -9` under load, then a restart; and SIGTERM drains."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from .server import Server, Site, make_site, serving, stored

BATCH = 50


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def load(server: Server, key: str, acknowledged: set[str], stop: threading.Event, worker: int) -> None:
    """Send batches with unique ids until stopped; remember the ids of every acknowledged batch."""
    n = 0
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=5) as client:
        while not stop.is_set():
            ids = [f"w{worker}-{n}-{i}" for i in range(BATCH)]
            n += 1
            batch = {"batch": [{"event": "page_view", "event_id": i, "visitor_id": f"v{worker}",
                                "ts": "2026-12-01T12:00:00Z"} for i in ids]}
            try:
                reply = client.post("/api/collect", json=batch)
            except httpx.HTTPError:
                continue  # no answer: not acknowledged
            if reply.status_code == 200 and reply.json()["accepted"] == BATCH:
                acknowledged.update(ids)


def run_load(server: Server, key: str, seconds: float, workers: int = 4) -> tuple[set[str], threading.Event,
                                                                                  list[threading.Thread]]:
    acknowledged: set[str] = set()
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(server, key, acknowledged, stop, w)) for w in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    return acknowledged, stop, threads


def test_kill_9_under_load_loses_nothing_acknowledged(site: Site) -> None:
    server = Server(site)
    acknowledged, stop, threads = run_load(server, site.write_key, seconds=3.0)
    server.stop(signal.SIGKILL)  # mid-load: requests in flight are cut off
    stop.set()
    for t in threads:
        t.join()
    snapshot = set(acknowledged)
    assert len(snapshot) > 10 * BATCH  # the load was real
    with serving(site):  # the restart stores what the spool holds before it is ready
        pass
    ids = [r["event_id"] for r in stored(site, "SELECT event_id FROM events")]
    assert len(ids) == len(set(ids))
    assert snapshot <= set(ids), f"{len(snapshot - set(ids))} acknowledged events were lost"


def test_sigterm_drains_and_exits_within_30_seconds(site: Site) -> None:
    server = Server(site)
    acknowledged, stop, threads = run_load(server, site.write_key, seconds=2.0)
    took = server.stop(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join()
    assert took < 30
    ids = {r["event_id"] for r in stored(site, "SELECT event_id FROM events")}
    assert acknowledged <= ids
