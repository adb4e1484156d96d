"""The canonical event: one definition that every DDL statement, importer and wire format uses.

Timestamps are stored as UTC without a zone (microsecond precision); the reporting timezone is
applied only when grouping by calendar day. `properties` holds everything that has no column of
its own, as a JSON object.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """Logical column types, rendered per database by the backends' dialect tables."""

    TEXT = "text"
    TIMESTAMP = "timestamp"
    DOUBLE = "double"
    INTEGER = "integer"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    doc: str = ""


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("project", Kind.TEXT, True, "the site or app the event belongs to"),
    Column("event_id", Kind.TEXT, True, "unique per project; a second event with the same id is ignored"),
    Column("ts", Kind.TIMESTAMP, True, "when it happened, UTC, microseconds"),
    Column("received_at", Kind.TIMESTAMP, True, "when keystep received or imported it, UTC"),
    Column("event", Kind.TEXT, True, "the event name, e.g. page_view, add_to_cart, purchase"),
    Column("visitor_id", Kind.TEXT, True, "the anonymous browser or device id"),
    Column("user_id", Kind.TEXT, False, "the identified person, when known"),
    Column("session_id", Kind.TEXT, False, "the tracker's session id; derived from inactivity when absent"),
    Column("url", Kind.TEXT),
    Column("path", Kind.TEXT),
    Column("referrer", Kind.TEXT),
    Column("utm_source", Kind.TEXT),
    Column("utm_medium", Kind.TEXT),
    Column("utm_campaign", Kind.TEXT),
    Column("utm_term", Kind.TEXT),
    Column("utm_content", Kind.TEXT),
    Column("channel", Kind.TEXT, False, "default channel group (Direct, Organic Search, Paid Search, ...)"),
    Column("device_type", Kind.TEXT, False, "desktop, mobile or tablet"),
    Column("browser", Kind.TEXT),
    Column("os", Kind.TEXT),
    Column("country", Kind.TEXT, False, "ISO 3166-1 alpha-2"),
    Column("revenue", Kind.DOUBLE, False, "monetary value carried by the event"),
    Column("currency", Kind.TEXT, False, "ISO 4217 code of revenue"),
    Column("properties", Kind.JSON, False, "every other attribute, a JSON object"),
)

# What the store adds to every event it writes (not part of the event sent or imported).
STORED_EVENT_COLUMNS: tuple[Column, ...] = (
    Column("visitor_no", Kind.INTEGER, True,
           "the store's number for the event's (project, visitor_id): 0, 1, 2, ... in the order visitors were"
           " first written (see `visitors`)"),
)

EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS if c.required)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in EVENT_COLUMNS}

# Columns an event attribute can be broken down by directly (the unit takes its first event's value).
EVENT_DIMENSIONS: tuple[str, ...] = (
    "device_type",
    "browser",
    "os",
    "country",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
)

# The rejected-events table: what was wrong, where, and the raw input (truncated).
REJECTED_COLUMNS: tuple[Column, ...] = (
    Column("project", Kind.TEXT, True),
    Column("received_at", Kind.TIMESTAMP, True),
    Column("source", Kind.TEXT, True, "file path or ingest route"),
    Column("location", Kind.TEXT, True, "row number, batch index, ..."),
    Column("field", Kind.TEXT, False, "the column or field at fault"),
    Column("reason", Kind.TEXT, True),
    Column("raw", Kind.TEXT, False, "the offending input, truncated to 2 KiB"),
)

RAW_LIMIT = 2048

# Projects (sites) and their keys: a public write key (ingest only) and secret read keys (the query API),
# the latter stored only as a SHA-256 hash.
PROJECT_COLUMNS: tuple[Column, ...] = (
    Column("project", Kind.TEXT, True, "the project's id, used in every event"),
    Column("name", Kind.TEXT, True),
    Column("created_at", Kind.TIMESTAMP, True),
)
KEY_COLUMNS: tuple[Column, ...] = (
    Column("key_id", Kind.TEXT, True, "a short public id to name the key (e.g. for revoking it)"),
    Column("project", Kind.TEXT, True),
    Column("kind", Kind.TEXT, True, "write (ingest only) or read (query API only)"),
    Column("secret", Kind.TEXT, False, "a write key itself (it is public, sent by browsers)"),
    Column("secret_hash", Kind.TEXT, False, "SHA-256 of a read key; the key itself is shown once"),
    Column("created_at", Kind.TIMESTAMP, True),
    Column("revoked_at", Kind.TIMESTAMP, False),
)
# identify / alias: a visitor id belongs to a user id from `ts` on (the latest link wins).
IDENTITY_COLUMNS: tuple[Column, ...] = (
    Column("project", Kind.TEXT, True),
    Column("visitor_id", Kind.TEXT, True),
    Column("user_id", Kind.TEXT, True),
    Column("ts", Kind.TIMESTAMP, True),
    Column("source", Kind.TEXT, False, "identify, alias or the event that carried both ids"),
)

# The store's visitor directory: one row per (project, visitor_id) ever written, with its number and the
# 128-bit digest that the writer's in-memory directory is rebuilt from (`keystep.backends.visitors`).
VISITOR_COLUMNS: tuple[Column, ...] = (
    Column("project", Kind.TEXT, True),
    Column("visitor_id", Kind.TEXT, True),
    Column("visitor_no", Kind.INTEGER, True, "dense: 0, 1, 2, ... in the order visitors were first written"),
    Column("digest_hi", Kind.INTEGER, True, "the first 64 bits of the BLAKE2b-128 digest of (project, visitor_id)"),
    Column("digest_lo", Kind.INTEGER, True, "the last 64 bits"),
)

# The dashboard's people, their sessions and read-only share links (tokens stored as SHA-256 hashes).
USER_COLUMNS: tuple[Column, ...] = (
    Column("username", Kind.TEXT, True),
    Column("password_hash", Kind.TEXT, True, "argon2id"),
    Column("created_at", Kind.TIMESTAMP, True),
)
WEB_SESSION_COLUMNS: tuple[Column, ...] = (
    Column("session_hash", Kind.TEXT, True),
    Column("username", Kind.TEXT, True),
    Column("csrf", Kind.TEXT, True, "the session's anti-forgery token, sent back with every form"),
    Column("created_at", Kind.TIMESTAMP, True),
    Column("expires_at", Kind.TIMESTAMP, True),
)
SHARE_COLUMNS: tuple[Column, ...] = (
    Column("token_hash", Kind.TEXT, True),
    Column("path", Kind.TEXT, True, "the dashboard view the link opens, with its query string"),
    Column("created_by", Kind.TEXT, True),
    Column("created_at", Kind.TIMESTAMP, True),
    Column("revoked_at", Kind.TIMESTAMP, False),
)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()


TABLES: tuple[Table, ...] = (
    # unique on (project, event_id) too, kept so by the writer (`keystep.backends.duckdb`), not by an index
    Table("events", EVENT_COLUMNS + STORED_EVENT_COLUMNS),
    Table("visitors", VISITOR_COLUMNS),
    Table("rejected_events", REJECTED_COLUMNS),
    Table("projects", PROJECT_COLUMNS, ("project",)),
    Table("keys", KEY_COLUMNS, ("key_id",)),
    Table("identities", IDENTITY_COLUMNS, ("project", "visitor_id", "user_id")),
    Table("users", USER_COLUMNS, ("username",)),
    Table("web_sessions", WEB_SESSION_COLUMNS, ("session_hash",)),
    Table("shares", SHARE_COLUMNS, ("token_hash",)),
)
TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
