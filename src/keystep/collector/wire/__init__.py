"""Wire formats: how each client library sends events, turned into incoming events.

A format module exposes `ROUTES`: the paths it answers, each with a pure `parse(request) -> Parsed`
(bytes and headers in; incoming events, identity links and the write key out) and, when the format's
clients expect a particular reply, `respond(outcome) -> Reply`. `WireError` means the whole body is
unreadable (400); a single unreadable item of a batch is one incoming event carrying `_reject`, so the
rest of the batch is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from keystep.collector.pipeline import Incoming, Outcome


class WireError(ValueError):
    """The body cannot be read as this format at all."""


def loads_json(data: bytes | str) -> Any:
    """JSON text as Python values, read by orjson; raises `orjson.JSONDecodeError`. Text that holds a lone
    UTF-16 surrogate escape (`"\\ud800"`: valid JSON, but no character), which orjson refuses, is read by
    the standard library instead, still refusing NaN and Infinity as orjson does, so the string
    clean-up (`keystep.enrich.strings`) replaces the surrogate rather than the whole body being refused."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        try:
            return json.loads(data, parse_constant=_no_constant)
        except ValueError:
            raise exc from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(request: Request) -> Any:
    """The request's body read as JSON (`loads_json`); `WireError` when it is not JSON."""
    try:
        return loads_json(request.body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"the body is not valid JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes  # already size-checked and decompressed
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)  # an urlencoded body, parsed


@dataclass(frozen=True, slots=True)
class Parsed:
    events: list[Incoming]
    write_key: str | None = None
    sent_at: object = None
    identities: list[dict[str, Any]] = field(default_factory=list)  # {visitor_id, user_id, ts, source}
    validate_only: bool = False  # store nothing (GA4's debug endpoint)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    body: bytes | Any = None  # bytes as they are, else JSON
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    methods: Sequence[str]
    parse: Callable[[Request], Parsed]
    respond: Callable[[Outcome], Reply] | None = None
    name: str = ""
    fail: Callable[[int, str], Reply] | None = None  # the error reply (status, message), when clients need their own


def reject(item: Any, reason: str) -> Incoming:
    """An item of a batch that cannot be read: kept as a rejection, the rest of the batch goes on."""
    return {"_reject": reason, "_raw": item}


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return None
