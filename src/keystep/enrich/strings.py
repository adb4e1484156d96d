"""Every text value of an event made storable: valid Unicode, no NUL bytes, bounded lengths.

What a client sends can hold anything JSON can: lone UTF-16 surrogates (``"\\ud800"``, which no UTF-8
encoder accepts and DuckDB rejects), NUL bytes, megabyte-long strings, thousands of properties. This step
rewrites, in place:

- the top-level text values of the event (the canonical text columns such as ``event``, ``url``,
  ``utm_source``, and the request facts such as ``user_agent``);
- inside ``properties`` (a JSON text is parsed first when it holds an object), recursively through nested
  objects and lists: every key and every string value.

Each text: NUL characters are removed; surrogates that form a valid UTF-16 pair are joined into their
character and lone surrogates become U+FFFD (the replacement character); then the text is truncated to
its limit, with a warning note:

- ``EVENT_NAME_LIMIT`` (200 characters): ``event`` and ``original_event``;
- ``URL_LIMIT`` (4,000): ``url`` and ``referrer``;
- ``TEXT_LIMIT`` (2,000): every other top-level text and every property string value;
- ``PROPERTY_KEY_LIMIT`` (200): every property key, at every depth (a key that collides with an
  earlier one once cleaned is dropped, with a note);
- ``MAX_PROPERTIES`` (500): keys of one object; later keys are dropped with one note per object;
- ``MAX_DEPTH`` (32): objects and lists nested deeper than this inside ``properties`` become null, with a
  note (it also keeps the recursion far from Python's limit).

Any other object or list (a value no column takes, which the column checks reject) is cleaned like a
property value; other non-text values are left for the column checks (`check_columns`) to judge.
Limits count characters (code points), not bytes. At most ``MAX_NOTES`` (20) notes are written per
event, then one note saying how many more there were. Fixing characters is silent; only truncation and
dropping are noted.

The incoming values are never changed: an object or list in which something needs cleaning is replaced
in the event by a cleaned copy (a dict, a list: tuples and other mappings become these), and a dict or
list in which nothing does is kept as it is, the same object (the usual properties are not copied).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from keystep.collector.pipeline import Context, Drop, Incoming

EVENT_NAME_LIMIT = 200
PROPERTY_KEY_LIMIT = 200
TEXT_LIMIT = 2_000
URL_LIMIT = 4_000
MAX_PROPERTIES = 500
MAX_DEPTH = 32
MAX_NOTES = 20

COLUMN_LIMITS: Mapping[str, int] = {
    "event": EVENT_NAME_LIMIT,
    "original_event": EVENT_NAME_LIMIT,
    "url": URL_LIMIT,
    "referrer": URL_LIMIT,
}

_SHORTEST_LIMIT = min(TEXT_LIMIT, *COLUMN_LIMITS.values())  # a text this short is within any limit
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCALARS = (int, float, bool)


def clean_text(text: str) -> str:
    """`text` without NUL characters and with every lone surrogate replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):  # an ASCII text holds no surrogate
        # UTF-16 with surrogatepass writes each surrogate as its code unit; decoding joins valid pairs
        # and turns every unpaired unit into U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def clean_strings(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    found: list[str] = []
    for name, value in event.items():
        if isinstance(value, str):
            if ((len(value) <= _SHORTEST_LIMIT or len(value) <= COLUMN_LIMITS.get(name, TEXT_LIMIT))
                    and value.isascii() and "\x00" not in value):
                continue  # the usual text: nothing to clean or cut
            if name != "properties":  # (a JSON text of properties: below)
                event[name] = _fit(clean_text(value), COLUMN_LIMITS.get(name, TEXT_LIMIT), name, found)
        elif value is None or name == "properties" or type(value) in _SCALARS:
            continue
        elif isinstance(value, Mapping | list | tuple):  # no column takes one; cleaned for the rejection
            event[name] = _clean_value(value, name, 1, found)
    properties = event.get("properties")
    if properties is None:
        pass
    elif type(properties) is dict:  # the usual properties: kept as they are when nothing needs cleaning
        if (cleaned := _clean_object(properties, "properties", 1, found)) is not properties:
            event["properties"] = cleaned
    elif isinstance(properties, str):
        parsed = _json_object(clean_text(properties))
        if parsed is None:  # not an object: left to check_columns, characters fixed
            event["properties"] = clean_text(properties)
        else:
            event["properties"] = _clean_object(parsed, "properties", 1, found)
    elif isinstance(properties, Mapping):
        event["properties"] = _clean_object(properties, "properties", 1, found)
    elif isinstance(properties, list | tuple):
        event["properties"] = _clean_value(properties, "properties", 1, found)
    if found:
        notes.extend(found[:MAX_NOTES])
        if len(found) > MAX_NOTES:
            notes.append(f"{len(found) - MAX_NOTES} more values truncated or dropped")
    return event


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _fit(text: str, limit: int, where: str, found: list[str]) -> str:
    if len(text) <= limit:
        return text
    found.append(f"{where}: truncated from {len(text)} to {limit} characters")
    return text[:limit]


def _clean_object(value: Mapping[Any, Any], where: str, depth: int, found: list[str]) -> dict[str, Any]:
    """`value` with its keys and values cleaned, as a dict: `value` itself when it is a dict in which
    nothing needs cleaning at any depth (a value as it is stays the same object), else a new dict."""
    out: dict[str, Any] | None = None  # None: every key and value so far as it is, in `value` itself
    items: Iterable[tuple[Any, Any]] = value.items()
    if len(value) > MAX_PROPERTIES:
        found.append(f"{where}: {len(value) - MAX_PROPERTIES} keys beyond the first {MAX_PROPERTIES} dropped")
        items, out = islice(items, MAX_PROPERTIES), {}
    elif type(value) is not dict:
        out = {}
    for raw_key, item in items:
        if type(raw_key) is str and len(raw_key) <= PROPERTY_KEY_LIMIT and raw_key.isascii() and "\x00" not in raw_key:
            key = raw_key  # the usual key: nothing to clean or cut
        else:
            key = clean_text(raw_key if isinstance(raw_key, str) else str(raw_key))
            key = _fit(key, PROPERTY_KEY_LIMIT, f"{where} key {_label(key)}", found)
            if out is None:
                out = _before(value, raw_key)
        if out is not None and key in out:  # (while `out` is None, every key is one of a dict's own: unique)
            found.append(f"{where}.{_label(key)}: a second key with this name once cleaned; dropped")
            continue
        kind = type(item)
        if kind is str:
            if len(item) <= TEXT_LIMIT and item.isascii() and "\x00" not in item:
                cleaned: Any = item  # the usual value: nothing to clean or cut (the path is never built)
            else:
                cleaned = _fit(clean_text(item), TEXT_LIMIT, f"{where}.{_label(key)}", found)
        elif item is None or kind is int or kind is float or kind is bool:
            cleaned = item
        else:
            cleaned = _clean_value(item, f"{where}.{_label(key)}", depth, found)
        if out is None:
            if cleaned is item:
                continue
            out = _before(value, raw_key)
        out[key] = cleaned
    return value if out is None else out  # type: ignore[return-value]  # (a dict: `out` is None only for one)


def _before(value: Mapping[Any, Any], stop: object) -> dict[str, Any]:
    """The entries of `value` before the key `stop`, as they are."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key is stop:
            break
        out[key] = item
    return out


def _clean_value(value: Any, where: str, depth: int, found: list[str]) -> Any:
    """`value` cleaned: itself when nothing in it needs cleaning (a dict or a list), else a new value (a
    tuple becomes a list, any other mapping a dict)."""
    if isinstance(value, str):
        return _fit(clean_text(value), TEXT_LIMIT, where, found)
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            found.append(f"{where}: nested deeper than {MAX_DEPTH} levels; set to null")
            return None
        if isinstance(value, Mapping):
            return _clean_object(value, where, depth + 1, found)
        out: list[Any] | None = None if type(value) is list else []  # None: every item so far as it is
        for i, item in enumerate(value):
            cleaned = _clean_value(item, f"{where}[{i}]", depth + 1, found)
            if out is None:
                if cleaned is item:
                    continue
                out = list(value[:i])
            out.append(cleaned)
        return value if out is None else out
    return value


def _label(key: str) -> str:
    return key if len(key) <= 40 else key[:37] + "..."
