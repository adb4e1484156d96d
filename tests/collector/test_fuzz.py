"""Arbitrary JSON and bytes at every ingest route of a live server: never a 5xx, never a crash, and
every acknowledged valid event is stored."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystep.collector.app import WIRE_FORMATS

from .server import Server, make_site, stored

ROUTES = sorted({(route.path, method) for routes in WIRE_FORMATS for route in routes for method in route.methods})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)
# objects shaped like events of any format, with fields that exist (so the parsers go deep)
FIELDS = ("event", "event_id", "ts", "visitor_id", "user_id", "properties", "type", "messageId", "anonymousId",
          "userId", "timestamp", "distinct_id", "uuid", "api_key", "e", "eid", "dtm", "aid", "payload", "website",
          "client_id", "events", "name", "params", "data", "batch", "revenue", "url", "sent_at", "context")
event_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(event_like, max_size=4).map(lambda v: json.dumps({"batch": v}).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.binary(max_size=200).map(gzip.compress),
    event_like.map(lambda v: base64.b64encode(json.dumps(v).encode())),
)


def test_no_route_fails_on_arbitrary_input(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    server = Server(site)
    acknowledged: list[str] = []
    key = site.write_key
    headers = {"Authorization": f"Bearer {key}"}
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:

            @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(route=st.sampled_from(ROUTES), body=bodies, auth=st.sampled_from(("bearer", "basic", "query")),
                   gzipped=st.booleans(), form=st.booleans(), valid=st.lists(st.integers(0, 10**9), max_size=3))
            def probe(route: tuple[str, str], body: bytes, auth: str, gzipped: bool, form: bool,
                      valid: list[int]) -> None:
                path, method = route
                h: dict[str, str] = {**(headers if auth == "bearer" else basic if auth == "basic" else {})}
                params: dict[str, Any] = {"key": key, "api_secret": key, "aid": key} if auth == "query" else {}
                if method == "GET":
                    reply = client.get(path, params={**params, "data": body.decode("latin-1")[:200]}, headers=h)
                else:
                    content = body
                    if form:
                        h["Content-Type"] = "application/x-www-form-urlencoded"
                        content = b"data=" + base64.b64encode(body)
                    if gzipped:
                        h["Content-Encoding"] = "gzip"
                        content = gzip.compress(content)
                    reply = client.request(method, path, content=content, params=params, headers=h)
                assert reply.status_code < 500, (path, reply.status_code, reply.text)
                # valid native events mixed in: when acknowledged, they must be stored
                if valid:
                    ids = [f"fuzz-{n}" for n in valid]
                    ok = client.post("/api/collect", headers=headers, json={"batch": [
                        {"event": "page_view", "event_id": i, "visitor_id": "fuzzer"} for i in ids]})
                    assert ok.status_code == 200
                    acknowledged.extend(ids)

            probe()
            assert client.get("/healthz").status_code == 200
    finally:
        server.stop()
    ids = {r["event_id"] for r in stored(site, "SELECT event_id FROM events")}
    assert set(acknowledged) <= ids
