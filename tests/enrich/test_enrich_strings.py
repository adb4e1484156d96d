"""clean_strings: valid Unicode, no NUL, the documented limits, never an exception."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keystep.collector.pipeline import Context
from keystep.enrich.strings import (
    EVENT_NAME_LIMIT,
    MAX_DEPTH,
    MAX_NOTES,
    MAX_PROPERTIES,
    PROPERTY_KEY_LIMIT,
    TEXT_LIMIT,
    URL_LIMIT,
    clean_strings,
)

CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch")


def clean(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    out = clean_strings(dict(event), CONTEXT, notes)
    assert isinstance(out, dict)
    return out, notes


def test_the_limits_are_the_documented_ones() -> None:
    assert (EVENT_NAME_LIMIT, PROPERTY_KEY_LIMIT, TEXT_LIMIT, URL_LIMIT, MAX_PROPERTIES) == (200, 200, 2000, 4000, 500)


def test_lone_surrogates_become_the_replacement_character_and_pairs_are_joined() -> None:
    out, notes = clean({
        "event": "sign\ud800up",
        "url": "https://shop.example/\udfff",
        "properties": {"k\udc00": ["\ud83d\ude00", {"deep": "x\ud800"}]},
    })
    assert out["event"] == "sign\ufffdup"
    assert out["url"] == "https://shop.example/\ufffd"
    assert out["properties"] == {"k\ufffd": ["\U0001f600", {"deep": "x\ufffd"}]}
    assert json.dumps(out, ensure_ascii=False).encode("utf-8")  # would raise on a surrogate
    assert notes == []  # fixing characters is silent


def test_nul_bytes_are_removed_everywhere() -> None:
    out, _ = clean({"event": "pay\x00ment", "utm_source": "\x00news", "properties": {"a\x00b": "c\x00d", "n": 1}})
    assert (out["event"], out["utm_source"]) == ("payment", "news")
    assert out["properties"] == {"ab": "cd", "n": 1}


def test_each_text_is_cut_to_its_limit_with_a_note() -> None:
    out, notes = clean({
        "event": "e" * 201,
        "url": "u" * 4001,
        "referrer": "r" * 4000,  # exactly the limit: unchanged
        "utm_source": "s" * 2001,
        "properties": {"k" * 201: "v" * 2001, "short": "v" * 2000},
    })
    assert out["event"] == "e" * 200
    assert out["url"] == "u" * 4000
    assert out["referrer"] == "r" * 4000
    assert out["utm_source"] == "s" * 2000
    assert out["properties"] == {"k" * 200: "v" * 2000, "short": "v" * 2000}
    assert len(notes) == 5  # event, url, utm_source, the key, the value
    assert any(n.startswith("event:") and "200" in n for n in notes)


def test_at_most_500_properties_the_first_ones_kept() -> None:
    out, notes = clean({"event": "e", "properties": {f"p{i}": i for i in range(503)}})
    assert list(out["properties"]) == [f"p{i}" for i in range(500)]
    assert len(notes) == 1 and "3 keys" in notes[0]


def test_properties_as_json_text_are_parsed_and_cleaned() -> None:
    out, _ = clean({"event": "e", "properties": json.dumps({"a": "x\u0000y", "b": "\\ud800"})})
    assert out["properties"] == {"a": "xy", "b": "\\ud800"}
    out, _ = clean({"event": "e", "properties": '{"a": "\\ud800"}'})  # an escaped lone surrogate
    assert out["properties"] == {"a": "\ufffd"}


def test_properties_text_that_is_no_object_is_left_for_the_column_check() -> None:
    out, _ = clean({"event": "e", "properties": "[1, 2]\x00"})
    assert out["properties"] == "[1, 2]"


def test_non_text_values_are_untouched() -> None:
    props = {"n": 3, "x": 2.5, "b": True, "none": None, "list": [1, None, False]}
    out, notes = clean({"event": "e", "revenue": 9.5, "visitor_id": 42, "properties": props})
    assert out["revenue"] == 9.5 and out["visitor_id"] == 42
    assert out["properties"] == props and notes == []


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_nesting_deeper_than_the_limit_becomes_null() -> None:
    # properties itself is level 1: MAX_DEPTH levels of objects are kept
    out, notes = clean({"event": "e", "properties": nested(MAX_DEPTH)})
    assert out["properties"] == nested(MAX_DEPTH) and notes == []
    out, notes = clean({"event": "e", "properties": nested(MAX_DEPTH + 1)})
    value = out["properties"]
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == {"a": None}
    assert len(notes) == 1 and "nested deeper" in notes[0]


def test_a_key_that_collides_once_cleaned_is_dropped() -> None:
    out, notes = clean({"event": "e", "properties": {"a\x00": 1, "a": 2}})
    assert out["properties"] == {"a": 1}
    assert len(notes) == 1


def test_notes_are_capped_per_event() -> None:
    _, notes = clean({"event": "e", "properties": {f"p{i}": "v" * 2001 for i in range(30)}})
    assert len(notes) == MAX_NOTES + 1
    assert notes[-1].startswith("10 more")


# -- any JSON-like input ---------------------------------------------------------------------------

CHARS = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # surrogates, paired by chance or lone
    st.just("\x00"),
)
SHORT_TEXT = st.text(CHARS, max_size=12)
LONG_TEXT = st.builds(lambda c, n: c * n, CHARS, st.integers(0, 4200))
TEXT = st.one_of(SHORT_TEXT, SHORT_TEXT, LONG_TEXT)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.one_of(SHORT_TEXT, LONG_TEXT), children,
                                                                      max_size=4),
    max_leaves=25,
)
WIDE = st.integers(0, 620).map(lambda n: {f"k{i}": "v" for i in range(n)})
EVENTS = st.fixed_dictionaries(
    {"event": TEXT},
    optional={
        "url": TEXT, "referrer": TEXT, "utm_source": TEXT, "user_id": TEXT, "user_agent": TEXT,
        "original_event": TEXT, "revenue": SCALARS,
        "properties": st.one_of(st.dictionaries(SHORT_TEXT, VALUES, max_size=6), WIDE, TEXT, VALUES),
    },
)
TOP_LIMITS = {"event": 200, "original_event": 200, "url": 4000, "referrer": 4000}


def check_text(text: str, limit: int) -> None:
    text.encode("utf-8")  # strict: raises on any surrogate
    assert "\x00" not in text
    assert len(text) <= limit


def check_value(value: Any, depth: int) -> None:
    if isinstance(value, str):
        check_text(value, TEXT_LIMIT)
    elif isinstance(value, dict):
        assert depth <= MAX_DEPTH and len(value) <= MAX_PROPERTIES
        for key, item in value.items():
            check_text(key, PROPERTY_KEY_LIMIT)
            check_value(item, depth + 1)
    elif isinstance(value, list):
        assert depth <= MAX_DEPTH
        for item in value:
            check_value(item, depth + 1)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_clean_strings_never_raises_and_leaves_valid_bounded_text(event: dict[str, Any]) -> None:
    out, notes = clean(event)
    for name, value in out.items():
        if name == "properties" and isinstance(value, str):  # a JSON text that is no object
            value.encode("utf-8")
            assert "\x00" not in value
        elif name == "properties" and isinstance(value, dict):
            check_value(value, 1)
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        elif isinstance(value, str):
            check_text(value, TOP_LIMITS.get(name, TEXT_LIMIT))
        else:
            check_value(value, 1)
    assert len(notes) <= MAX_NOTES + 1
