"""The definitions editor: goals and funnels from the dashboard's forms, written into the definitions file.

The file is edited with ruamel.yaml's round trip, so its comments, order and layout stay as they were; a
goal or funnel that is edited keeps every field the form did not change (and its comments). The whole new
text is checked with `parse_definitions` — the same check and the same errors (file, line, field) as
every command — *before* anything is written; a failed check writes nothing. The file is replaced
atomically (a temporary file renamed over it), one edit at a time.

Pure apart from `save`: `goal_spec`/`funnel_spec` turn a form into the file's YAML shape, `edit_text`
applies one change to the text, `goal_form`/`funnel_form` fill the form from a definition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from keystep.conversions.definitions import Definitions, Funnel, Goal, Kind, format_duration
from keystep.conversions.editing import change_text, edit_definitions
from keystep.web.tables import condition_text

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
GOAL_FIELDS = ("kind", "category", "type", "label", "match", "eligible", "value")
FUNNEL_FIELDS = ("steps", "window", "mode", "unit")


class EditError(ValueError):
    """The form cannot become a definition (before the file's own check), or the file cannot be read."""


@dataclass(frozen=True, slots=True)
class Change:
    """One edit of a section (`goals` or `funnels`): set `name` to `spec` (None: delete it). `create`: the
    name must be new; else it must exist."""

    section: str
    name: str
    spec: dict[str, Any] | None
    create: bool = False


# -- forms -> the file's shape -----------------------------------------------------------------------


def _flow(data: Mapping[str, Any]) -> CommentedMap:
    node = CommentedMap(data)
    node.fa.set_flow_style()
    return node


def _flow_list(items: list[Any]) -> CommentedSeq:
    node = CommentedSeq(items)
    node.fa.set_flow_style()
    return node


def _number(text: str) -> float | str:
    """A number when it reads as one; else the text as typed, for the file's check to name."""
    try:
        return float(text)
    except ValueError:
        return text


def check_name(name: str, what: str) -> str:
    name = name.strip()
    if not NAME.match(name):
        raise EditError(f"a {what} name is 1 to 64 letters, digits, _ or - (no spaces or dots); got {name!r}")
    return name


def goal_spec(form: Mapping[str, str]) -> dict[str, Any]:
    """The goal's YAML from the form: name, label, kind, group (its category or type), event, path, where
    (one `field op value` per line), eligible_event, value_kind (none|fixed|from), value_amount, value_from,
    currency. Unknown values are written as given: the file's check names what is wrong."""
    kind = form.get("kind", "").strip()
    spec: dict[str, Any] = {"kind": kind}
    group = form.get("group", "").strip()
    spec["category" if kind == Kind.MICRO.value else "type"] = group
    if form.get("label", "").strip():
        spec["label"] = form["label"].strip()
    match: dict[str, Any] = {}
    if form.get("event", "").strip():
        match["event"] = form["event"].strip()
    if form.get("path", "").strip():
        match["path"] = form["path"].strip()
    where = [line.strip() for line in form.get("where", "").splitlines() if line.strip()]
    if where:
        match["where"] = _flow_list(where)
    if not match:
        raise EditError("give the goal an event name, a path glob or a condition to match")
    spec["match"] = _flow(match)
    if form.get("eligible_event", "").strip():
        spec["eligible"] = _flow({"event": form["eligible_event"].strip()})
    value_kind = form.get("value_kind", "none")
    if value_kind in ("fixed", "from"):
        value: dict[str, Any] = {}
        if value_kind == "fixed":
            value["fixed"] = _number(form.get("value_amount", "").strip())
        else:
            value["from"] = form.get("value_from", "").strip()
        if form.get("currency", "").strip():
            value["currency"] = form["currency"].strip()
        spec["value"] = _flow(value)
    return spec


def funnel_spec(form: Mapping[str, str]) -> dict[str, Any]:
    """The funnel's YAML from the form: steps (comma- or line-separated goal or event names), window, mode,
    unit."""
    steps = [s.strip() for s in re.split(r"[,\n]", form.get("steps", "")) if s.strip()]
    spec: dict[str, Any] = {"steps": _flow_list(steps)}
    for key in FUNNEL_FIELDS[1:]:
        if form.get(key, "").strip():
            spec[key] = form[key].strip()
    return spec


# -- definitions -> forms ----------------------------------------------------------------------------


def goal_form(goal: Goal) -> tuple[dict[str, str], str | None]:
    """The form's values for `goal`, and why the form cannot show it whole (None when it can): a goal with
    several matchers, several events, a URL glob or an eligibility rule other than one event is edited in
    the file, so that saving the form never drops part of it."""
    why = None
    if len(goal.match) != 1:
        why = "it has several matchers (any of them counts)"
    elif len(goal.match[0].events) > 1 or goal.match[0].url:
        why = "its matcher lists several events or a URL glob"
    elif goal.eligible and (len(goal.eligible) != 1 or len(goal.eligible[0].events) != 1 or goal.eligible[0].path
                            or goal.eligible[0].url or goal.eligible[0].conditions):
        why = "its eligibility rule is more than one event"
    m = goal.match[0]
    value = goal.value
    group = goal.category or goal.type
    form = {
        "name": goal.name, "label": goal.label, "kind": goal.kind.value, "group": group.value if group else "",
        "event": m.events[0] if m.events else "", "path": m.path or "",
        "where": "\n".join(condition_text(c) for c in m.conditions),
        "eligible_event": goal.eligible[0].events[0] if goal.eligible and goal.eligible[0].events else "",
        "value_kind": "none" if value is None else "fixed" if value.fixed is not None else "from",
        "value_amount": f"{value.fixed:g}" if value is not None and value.fixed is not None else "",
        "value_from": value.source or "" if value is not None else "",
        "currency": value.currency or "" if value is not None else "",
    }
    return form, why


def funnel_form(funnel: Funnel) -> dict[str, str]:
    return {"name": funnel.name, "steps": ", ".join(s.name for s in funnel.steps),
            "window": format_duration(funnel.window), "mode": funnel.mode.value, "unit": funnel.unit.value}


def uses_of_goal(definitions: Definitions, name: str) -> list[str]:
    """The funnels that have the goal as a step (deleting it would silently make that step an event name)."""
    return [f.name for f in definitions.funnels if any(s.name == name for s in f.steps)]


# -- the text ----------------------------------------------------------------------------------------


def _plain(node: Any) -> Any:
    """A ruamel node as plain data, to tell whether the form changed a field."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int | float):
        return float(node)
    return str(node)


def apply(change: Change) -> Callable[[Any], None]:
    """The form's change as a change of the file's data (for `keystep.conversions.editing`)."""
    def edit(data: Any) -> None:
        section = data.get(change.section)
        if section is None:
            section = data[change.section] = CommentedMap()
        if not isinstance(section, CommentedMap):
            raise EditError(f"`{change.section}` in the definitions file is not a mapping; fix it by hand first")
        what = change.section[:-1]
        exists = change.name in section
        if change.create and exists:
            raise EditError(f"the definitions file already has a {what} {change.name!r}")
        if not change.create and not exists:
            raise EditError(f"the definitions file has no {what} {change.name!r}")
        if change.spec is None:
            del section[change.name]
        elif change.create:
            section[change.name] = CommentedMap(change.spec)
        else:
            _update(section[change.name], change.spec, GOAL_FIELDS if change.section == "goals" else FUNNEL_FIELDS)
    return edit


def edit_text(text: str, change: Change) -> str:
    """`text` with the change applied; comments and layout kept. Raises EditError or DefinitionsError."""
    return change_text(text, apply(change))


def _update(node: Any, spec: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Set the form's fields on an existing definition in place: unchanged fields keep their node (and
    comments), fields the form left empty are removed, fields the form does not know are kept."""
    if not isinstance(node, CommentedMap):
        raise EditError("this definition is not a mapping in the file; edit it by hand")
    for key in fields:
        if key in spec:
            if key not in node or _plain(node[key]) != _plain(spec[key]):
                node[key] = spec[key]
        elif key in node:
            del node[key]


def save(path: Path, change: Change, install: Callable[[Definitions], None]) -> Definitions:
    """Apply `change` to the file at `path` (created when missing), check the whole new text, write it, and
    hand the new definitions to `install`. Raises EditError, or DefinitionsError (nothing written)."""
    definitions = edit_definitions(path, apply(change))
    install(definitions)
    return definitions
