"""The pipeline's pure parts without a server: the runner against a plain reference loop, the wire
formats' shortcuts for the usual input against their general rules, the string limits at their edges, and
the record's Arrow IPC stream against what pyarrow's stream writer writes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystep.collector.ingest import default_steps
from keystep.collector.pipeline import Context, Drop, Incoming, Outcome, Rejection, Step, raw_json, run_pipeline
from keystep.collector.record import SCHEMA, decode_record, encode_record, event_table
from keystep.collector.wire import Request, native, segment
from keystep.enrich.strings import EVENT_NAME_LIMIT, TEXT_LIMIT, URL_LIMIT, clean_strings
from keystep.enrich.useragent import user_agent_of
from keystep.events.schema import EVENT_COLUMN_NAMES

CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/api/collect", ip="203.0.113.9",
                  user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", salt=b"s" * 32)

texts = st.sampled_from(["", " ", "x", " page_view ", "purchase", "Order Completed", "é", "a\x00b", "x" * 201,
                         "https://shop.example/p?utm_source=google&utm_medium=cpc&gclid=1",
                         "https://www.google.com/", "semalt.com", "2026-03-02T11:00:00Z", "2026-03-02 10:00:00+01:00",
                         "not a time", "1772449200", "USD", "eur", "12.5", "Googlebot/2.1",
                         "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148"]) | st.text(
    st.characters(exclude_categories=("Cs",)), max_size=12)  # (JSON bodies as clients send them: no lone surrogates)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
FIELDS = ("event", "event_id", "ts", "timestamp", "visitor_id", "user_id", "session_id", "url", "referrer", "path",
          "revenue", "currency", "properties", "utm_source", "utm_medium", "utm_campaign", "channel", "device_type",
          "browser", "os", "sent_at", "user_agent", "ip", "original_event", "other", "key")
events = st.dictionaries(st.sampled_from(FIELDS), values, max_size=9)


# -- the runner -------------------------------------------------------------------------------------


def reference_pipeline(items: Sequence[Incoming], context: Context, steps: Sequence[Step]) -> Outcome:
    """The pipeline's rule, spelled out plainly: each event through the steps in order until one drops it
    (a step that raises rejects the event as unreadable), warnings in batch order."""
    outcome = Outcome()
    for index, original in enumerate(items):
        event: Any = dict(original)
        notes: list[str] = []
        result: Any = event
        for step in steps:
            try:
                result = step(event, context, notes)
            except Exception as exc:
                result = Drop("unreadable_event", f"could not read the event ({type(exc).__name__}: {exc})")
            if isinstance(result, Drop):
                break
            event = result
        outcome.warnings.extend((index, note) for note in notes)
        if isinstance(result, Drop):
            if result.rejected:
                outcome.rejected.append(Rejection(index, result, raw_json(original)))
            else:
                outcome.dropped[result.reason] += 1
        else:
            outcome.accepted.append(result)
            outcome.accepted_index.append(index)
    return outcome


def _warn(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    if event.get("other") is not None:
        notes.append("other is ignored")
    return event


def _raise_on_key(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    if event.get("key") == "x":
        raise RuntimeError("a step's bug")
    return event


def _quietly_drop(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    return Drop("test_drop", rejected=False) if event.get("other") == "x" else event


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(events, max_size=8))
def test_the_runner_gives_what_the_plain_loop_gives(items: list[dict[str, Any]]) -> None:
    steps = (_warn, _raise_on_key, _quietly_drop, *default_steps())
    before = json.dumps(items, default=str)
    got = run_pipeline(items, CONTEXT, steps)
    assert json.dumps(items, default=str) == before  # the incoming events are left as they were
    expected = reference_pipeline(items, CONTEXT, steps)
    assert got.accepted == expected.accepted
    assert got.accepted_index == expected.accepted_index
    assert got.rejected == expected.rejected
    assert got.dropped == expected.dropped
    assert got.warnings == expected.warnings


def test_the_runner_leaves_the_incoming_events_as_they_were() -> None:
    items: list[dict[str, Any]] = [{"event": " page_view ", "visitor_id": "v1", "properties": {"a": "b"},
                                    "url": "https://shop.example/?gclid=1"}]
    before = json.dumps(items)
    outcome = run_pipeline(items, CONTEXT, default_steps())
    assert json.dumps(items) == before
    assert outcome.accepted[0]["event"] == "page_view"
    assert json.loads(outcome.accepted[0]["properties"]) == {"a": "b", "click_id_type": "gclid", "click_id": "1"}


def test_a_step_that_returns_the_drop_stops_the_event_there() -> None:
    seen: list[str] = []

    def record(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
        seen.append(str(event.get("event")))
        return event

    outcome = run_pipeline([{"event": "a"}, {"event": "x", "other": "x"}], CONTEXT, [_quietly_drop, record])
    assert seen == ["a"]
    assert outcome.dropped == Counter({"test_drop": 1})
    assert outcome.accepted_index == [0]


# -- the wire formats' shortcuts ----------------------------------------------------------------------


def reference_native_event(item: dict[str, Any]) -> dict[str, Any]:
    """What keystep's own format takes from an event object (its module docstring)."""
    columns = set(EVENT_COLUMN_NAMES) - {"project", "received_at"}
    event = {k: v for k, v in item.items() if k in columns}
    if "ts" not in event and "timestamp" in item:
        event["ts"] = item["timestamp"]
    for extra in ("sent_at", "user_agent"):
        if extra in item:
            event[extra] = item[extra]
    return event


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(events, min_size=1, max_size=5))
def test_native_events_are_their_canonical_columns_in_order(items: list[dict[str, Any]]) -> None:
    body = json.dumps({"batch": items}).encode()
    parsed = native.parse(Request("POST", "/api/collect", body, {}, {}))
    expected = [reference_native_event(item) for item in json.loads(body)["batch"]]
    assert [list(e.items()) for e in parsed.events] == [list(e.items()) for e in expected]


def _segment_events(messages: list[Any]) -> list[dict[str, Any]]:
    body = json.dumps({"batch": messages}).encode()
    return segment.parse_batch(Request("POST", "/v1/batch", body, {}, {})).events


def test_segment_message_types_are_read_ignoring_case_and_spaces() -> None:
    message = {"event": "Order Completed", "messageId": "m1", "anonymousId": " a1 ", "userId": 7,
               "properties": {"revenue": 12.5}, "context": {"campaign": {"source": "news"}}}
    for kind in ("track", "Track", " TRACK ", "track\n"):
        assert _segment_events([{**message, "type": kind}]) == _segment_events([{**message, "type": "track"}])
    (event,) = _segment_events([{**message, "type": "track"}])
    assert (event["event"], event["original_event"], event["visitor_id"], event["user_id"]) == (
        "purchase", "Order Completed", "a1", "7")
    assert (event["utm_source"], event["revenue"]) == ("news", 12.5)
    assert _segment_events([{"type": " Identify ", "anonymousId": "a", "userId": "u"}]) == [{"_skip": "identify"}]


def test_segment_messages_without_a_usable_type_are_rejected_alone() -> None:
    reason = "a message needs a `type` (track, page, screen, identify, alias or group)"
    for kind in (None, "", "  ", 3, ["track"], {"track": 1}):
        (event,) = _segment_events([{"type": kind, "event": "x"}])
        assert event["_reject"] == reason
    (event,) = _segment_events([{"type": "Purchase", "event": "x"}])
    assert event["_reject"] == "unknown message type 'purchase'"


def test_segment_ids_as_numbers_and_blanks() -> None:
    (event,) = _segment_events([{"type": "track", "event": "x", "anonymousId": 2.5, "userId": "  "}])
    assert (event["visitor_id"], event["user_id"]) == ("2.5", None)
    (event,) = _segment_events([{"type": "track", "event": "x", "anonymousId": True, "userId": 12345}])
    assert (event["visitor_id"], event["user_id"]) == (None, "12345")


# -- string limits and the user agent ------------------------------------------------------------------


def test_texts_at_and_past_their_limits() -> None:
    for name, limit in (("event", EVENT_NAME_LIMIT), ("url", URL_LIMIT), ("utm_source", TEXT_LIMIT)):
        at_limit: dict[str, Any] = {name: "a" * limit}
        notes: list[str] = []
        assert clean_strings(dict(at_limit), CONTEXT, notes) == at_limit and notes == []
        out = clean_strings({name: "a" * (limit + 1)}, CONTEXT, notes)
        assert isinstance(out, dict) and out[name] == "a" * limit
        assert notes == [f"{name}: truncated from {limit + 1} to {limit} characters"]
    notes = []
    assert clean_strings({"event": "é\x00", "url": "x\x00"}, CONTEXT, notes) == {"event": "é", "url": "x"}
    assert notes == []


def test_the_user_agent_is_the_events_else_the_requests() -> None:
    header = CONTEXT.user_agent
    assert user_agent_of({"user_agent": " Safari/1 "}, CONTEXT) == "Safari/1"
    assert user_agent_of({"user_agent": "  "}, CONTEXT) == header
    assert user_agent_of({"user_agent": 5}, CONTEXT) == header
    assert user_agent_of({}, CONTEXT) == header
    no_header = Context(project="shop", received_at=CONTEXT.received_at, route="/v1/batch", user_agent=" ")
    assert user_agent_of({"user_agent": None}, no_header) is None
    assert user_agent_of({"user_agent": "x" * (TEXT_LIMIT + 5)}, no_header) == "x" * TEXT_LIMIT


# -- the record's Arrow stream ----------------------------------------------------------------------


def _stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as stream:
        stream.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_the_record_holds_the_stream_that_pyarrow_writes() -> None:
    rows = [{"project": "shop", "event_id": str(i), "ts": datetime(2026, 3, 2, 12, i),
             "received_at": datetime(2026, 3, 2), "event": "page_view", "visitor_id": f"v{i}",
             "properties": json.dumps({"i": i}) if i % 2 else None}
            for i in range(5)]
    one = event_table(rows)
    two = pa.concat_tables([event_table(rows[:2]), event_table(rows[2:])])  # two batches
    rejected = [{"project": "shop", "received_at": datetime(2026, 3, 2), "reason": "x", "raw": "{}"}]
    for table in (one, two):
        record = encode_record(table, rejected)
        assert record.endswith(_stream(table))
        decoded = decode_record(record)
        assert decoded.events is not None and decoded.events.equals(table)
        assert decoded.rejected == rejected
    empty = encode_record(event_table([]), rejected)
    assert decode_record(empty).events is None and decode_record(empty).rejected == rejected


def test_a_rejected_event_with_a_lone_surrogate_is_kept_with_the_character_replaced() -> None:
    """Events made in code (not parsed from a body, where orjson refuses lone surrogates) may hold one; the
    rejection's raw text must still be writable to the spool, and the valid event beside it stored."""
    from keystep.collector.ingest import compute_record
    from keystep.collector.wire import Parsed

    bad = {"visitor_id": "v1", "properties": {"note": "a\ud800b", "é": 1}}  # no name: rejected
    good = {"event": "page_view", "visitor_id": "v2"}
    ingested = compute_record(Parsed([bad, good]), CONTEXT, default_steps())
    assert ingested.record is not None
    record = decode_record(ingested.record)
    assert record.events is not None and record.events.column("visitor_id").to_pylist() == ["v2"]
    expected = '{"visitor_id": "v1", "properties": {"note": "a\ufffdb", "\u00e9": 1}}'
    assert [json.loads(r["raw"]) for r in record.rejected] == [json.loads(expected)]
    assert "\ufffd" in record.rejected[0]["raw"] and "é" in record.rejected[0]["raw"]
