"""The definitions file: what it accepts, and errors that name the file, the line and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from keystep.cli.init import Template, template_text
from keystep.conversions.definitions import (
    Category,
    DefinitionsError,
    FunnelMode,
    Kind,
    MacroType,
    Op,
    Unit,
    load_definitions,
    parse_definitions,
    parse_duration,
)

GOOD = """\
timezone: Europe/Berlin
session_timeout: 45m
goals:
  add_to_cart:
    kind: micro
    category: process_milestone
    match: {event: add_to_cart}
  video:
    kind: micro
    category: secondary_action
    match:
      - {event: video_complete}
      - {event: page_view, path: "/videos/*", where: ["seconds > 30", "player != embed"]}
  contact:
    kind: macro
    type: lead
    match: {event: generate_lead, where: {form: contact}}
    eligible: {path: /contact*}
    value: {fixed: 40, currency: EUR}
  purchase:
    kind: macro
    type: revenue
    match: purchase
    value: {from: revenue, currency: EUR}
funnels:
  checkout:
    steps: [add_to_cart, begin_checkout, purchase]
    window: 2h
    mode: strict
    unit: session
"""


def test_a_complete_file() -> None:
    d = parse_definitions(GOOD, "keystep.yaml")
    assert d.timezone == "Europe/Berlin"
    assert d.session_timeout == timedelta(minutes=45)
    assert [g.name for g in d.micro] == ["add_to_cart", "video"]
    assert [g.name for g in d.macro] == ["contact", "purchase"]
    assert d.goal("add_to_cart").category is Category.PROCESS_MILESTONE
    assert d.goal("video").kind is Kind.MICRO and len(d.goal("video").match) == 2
    cond = d.goal("video").match[1].conditions
    assert [(c.field, c.op, c.value) for c in cond] == [("seconds", Op.GT, 30.0), ("player", Op.NE, "embed")]
    contact = d.goal("contact")
    assert contact.type is MacroType.LEAD
    assert contact.eligible[0].path == "/contact*"
    assert contact.value is not None and contact.value.fixed == 40.0 and contact.value.currency == "EUR"
    assert d.goal("purchase").value is not None and d.goal("purchase").value.source == "revenue"
    funnel = d.funnel("checkout")
    assert [s.name for s in funnel.steps] == ["add_to_cart", "begin_checkout", "purchase"]
    # a step that is not a goal matches the event of that name
    assert funnel.steps[1].match[0].events == ("begin_checkout",)
    assert (funnel.window, funnel.mode, funnel.unit) == (timedelta(hours=2), FunnelMode.STRICT, Unit.SESSION)
    assert d.goal("purchase").group == "macro:revenue"


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("type: lead", "type: leed", 16, "goals.contact.type", "expected one of revenue, lead, inquiry"),
        ("category: process_milestone", "category: milestone", 6, "goals.add_to_cart.category",
         "expected one of process_milestone, secondary_action"),
        ("window: 2h", "window: two hours", 28, "funnels.checkout.window", "expected a duration"),
        ("mode: strict", "mode: loose", 29, "funnels.checkout.mode", "ordered, strict, any_order"),
        ('"seconds > 30"', '"seconds ~ 30"', 13, "goals.video.match[1].where[0]", "field op value"),
        ("currency: EUR}\n  purchase", "currency: euro}\n  purchase", 19, "goals.contact.value.currency", "ISO 4217"),
        ("timezone: Europe/Berlin", "timezone: Mars/Olympus", 1, "timezone", "IANA timezone"),
        ("    match: {event: add_to_cart}\n", "    matches: {event: add_to_cart}\n", 7, "goals.add_to_cart.matches",
         "unknown field"),
        ("steps: [add_to_cart, begin_checkout, purchase]", "steps: [add_to_cart]", 27, "funnels.checkout.steps",
         "at least two"),
    ],
)
def test_errors_name_file_line_and_field(old: str, new: str, line: int, field: str, words: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(DefinitionsError) as info:
        parse_definitions(text, "site/keystep.yaml")
    err = info.value
    assert (err.source, err.line, err.field_path) == ("site/keystep.yaml", line, field)
    assert words in err.message
    assert str(err).startswith(f"site/keystep.yaml:{line}: {field}: ")


def test_kind_specific_fields() -> None:
    bad = GOOD.replace("    kind: macro\n    type: lead", "    kind: macro\n    category: process_milestone")
    with pytest.raises(DefinitionsError, match="`category` is for micro goals"):
        parse_definitions(bad)


def test_invalid_yaml_is_located() -> None:
    with pytest.raises(DefinitionsError) as info:
        parse_definitions("goals:\n  a: [unclosed\n", "k.yaml")
    assert info.value.line == 3 and "not valid YAML" in str(info.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError, match="keystep init"):
        load_definitions(tmp_path / "nope.yaml")


@pytest.mark.parametrize("template", list(Template))
def test_templates_load_and_use_ga4_names(template: Template, tmp_path: Path) -> None:
    path = tmp_path / "keystep.yaml"
    path.write_text(template_text(template))
    d = load_definitions(path)
    assert d.micro and d.macro and d.funnels
    events = {e for g in d.goals for m in g.match for e in m.events}
    ga4 = {"view_item", "add_to_cart", "begin_checkout", "add_payment_info", "purchase", "sign_up",
           "generate_lead", "page_view", "file_download", "video_complete", "tutorial_complete"}
    assert events & ga4


@pytest.mark.parametrize(("text", "seconds"), [("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800),
                                               ("2w", 1209600), ("1.5h", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_duration_rejects_other_units() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration("3 fortnights")
