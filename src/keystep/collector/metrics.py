"""The collector's Prometheus metrics (`GET /metrics`), one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ingest_requests_total", "Ingest requests by route and status", ["route", "status"],
                                registry=r)
        self.received = Counter("events_received_total", "Events in accepted request bodies", ["route"], registry=r)
        self.accepted = Counter("events_accepted_total", "Events written to the spool", ["route"], registry=r)
        self.rejected = Counter("events_rejected_total", "Invalid events, kept in rejected_events", ["reason"],
                                registry=r)
        self.dropped = Counter("events_dropped_total", "Events not counted (bots, spam, ...)", ["reason"], registry=r)
        self.warnings = Counter("events_warnings_total", "Events stored with a warning", registry=r)
        self.stored = Counter("events_stored_total", "Events new to the store", registry=r)
        self.duplicates = Counter("events_duplicate_total", "Events whose id was already stored", registry=r)
        self.pending = Gauge("spool_pending_bytes", "Spooled bytes not yet stored", registry=r)
        self.latency = Histogram("ingest_request_seconds", "Ingest request time, body read to acknowledgement",
                                 ["route"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))

    def record_stored(self, events: int, new: int) -> None:
        self.stored.inc(new)
        self.duplicates.inc(events - new)
