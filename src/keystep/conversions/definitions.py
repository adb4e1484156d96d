"""The definitions file: goals (micro and macro conversions) and funnels, as frozen data.

A goal matches events by name, by URL or path glob, and by conditions on properties (or on the
canonical columns), all combined with AND; a goal may list several matchers, combined with OR.
Errors name the file, the line and the field, and say what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

if TYPE_CHECKING:
    from keystep.experiments.definitions import Experiment

DEFAULT_PATH = Path("keystep.yaml")


class Kind(Enum):
    MICRO = "micro"
    MACRO = "macro"


class Category(Enum):
    """Micro conversions: on the path to the macro, or interest off the path."""

    PROCESS_MILESTONE = "process_milestone"
    SECONDARY_ACTION = "secondary_action"


class MacroType(Enum):
    REVENUE = "revenue"
    LEAD = "lead"
    INQUIRY = "inquiry"


class Unit(Enum):
    VISITOR = "visitor"
    SESSION = "session"
    USER = "user"


class FunnelMode(Enum):
    ORDERED = "ordered"  # steps in order; other events may come between
    STRICT = "strict"  # steps in order with no other event of the unit between them
    ANY_ORDER = "any_order"  # all steps within the window, in any order


class Op(Enum):
    EQ = "="
    NE = "!="
    CONTAINS = "contains"
    GT = ">"
    LT = "<"
    IN = "in"


@dataclass(frozen=True, slots=True)
class Condition:
    """`field op value`: field is a canonical column (e.g. device_type) or a property name."""

    field: str
    op: Op
    value: str | float | tuple[str | float, ...]


@dataclass(frozen=True, slots=True)
class Matcher:
    """All given criteria must hold (AND). Globs use `*` and `?`."""

    events: tuple[str, ...] = ()
    path: str | None = None
    url: str | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Value:
    """What one conversion is worth: a fixed amount, or read from a property/column (e.g. revenue)."""

    fixed: float | None = None
    source: str | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    kind: Kind
    match: tuple[Matcher, ...]
    category: Category | None = None
    type: MacroType | None = None
    label: str = ""
    eligible: tuple[Matcher, ...] = ()  # empty: every unit in the range is eligible
    value: Value | None = None

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def group(self) -> str:
        """`micro:process_milestone`, `macro:revenue`, ...: how reports group goals."""
        sub = self.category.value if self.category else self.type.value if self.type else ""
        return f"{self.kind.value}:{sub}"


@dataclass(frozen=True, slots=True)
class Step:
    """A funnel step: a goal of the file, or a plain event name."""

    name: str
    match: tuple[Matcher, ...]


@dataclass(frozen=True, slots=True)
class Funnel:
    name: str
    steps: tuple[Step, ...]
    window: timedelta = timedelta(days=1)
    mode: FunnelMode = FunnelMode.ORDERED
    unit: Unit = Unit.VISITOR


@dataclass(frozen=True, slots=True)
class Definitions:
    goals: tuple[Goal, ...] = ()
    funnels: tuple[Funnel, ...] = ()
    experiments: tuple[Experiment, ...] = ()
    timezone: str = "UTC"
    session_timeout: timedelta = timedelta(minutes=30)
    source: str = "<memory>"

    def goal(self, name: str) -> Goal:
        for g in self.goals:
            if g.name == name:
                return g
        raise KeyError(f"no goal named {name!r}; defined: {', '.join(g.name for g in self.goals) or 'none'}")

    def funnel(self, name: str) -> Funnel:
        for f in self.funnels:
            if f.name == name:
                return f
        raise KeyError(f"no funnel named {name!r}; defined: {', '.join(f.name for f in self.funnels) or 'none'}")

    @property
    def micro(self) -> tuple[Goal, ...]:
        return tuple(g for g in self.goals if g.kind is Kind.MICRO)

    @property
    def macro(self) -> tuple[Goal, ...]:
        return tuple(g for g in self.goals if g.kind is Kind.MACRO)

    def experiment(self, key: str) -> Experiment:
        for e in self.experiments:
            if e.key == key:
                return e
        defined = ", ".join(e.key for e in self.experiments) or "none"
        raise KeyError(f"no experiment named {key!r}; defined: {defined}")

    def step(self, name: str) -> Step:
        """A step by goal name, else by event name."""
        for g in self.goals:
            if g.name == name:
                return Step(name, g.match)
        return Step(name, (Matcher(events=(name,)),))


class DefinitionsError(ValueError):
    """A definitions file problem, located: `file:line: field: message`."""

    def __init__(self, source: str, line: int | None, field_path: str, message: str) -> None:
        self.source, self.line, self.field_path, self.message = source, line, field_path, message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}")


# -- durations -------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`45s`, `30m`, `12h`, `7d`, `2w` -> timedelta."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"expected a duration such as 30m, 12h or 7d, got {text!r}")
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


# -- loading ---------------------------------------------------------------------------------------


class _Located:
    """Plain data from YAML plus the line of every node, addressed by its dotted path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}

    def to_python(self, node: yaml.Node, path: str) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.to_python(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.to_python(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))

    def error(self, path: str, message: str) -> DefinitionsError:
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return DefinitionsError(self.source, self.lines.get(probe), path, message)


def load_definitions(path: str | Path = DEFAULT_PATH) -> Definitions:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionsError(
            str(p), None, "", "file not found (create one with `keystep init --template shop|saas|leadgen`)"
        ) from None
    return parse_definitions(text, str(p))


def parse_definitions(text: str, source: str = "<memory>") -> Definitions:
    loc = _Located(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise DefinitionsError(source, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    data = loc.to_python(node, "") if node is not None else {}
    if not isinstance(data, dict):
        raise loc.error("", "expected a mapping with `goals:` and `funnels:`")
    _known_keys(loc, data, "", {"timezone", "session_timeout", "goals", "funnels", "experiments"})

    timezone = str(data.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise loc.error("timezone", f"expected an IANA timezone such as Europe/Berlin, got {timezone!r}") from None
    timeout = _duration(loc, data, "session_timeout", timedelta(minutes=30))

    goals_raw = data.get("goals") or {}
    if not isinstance(goals_raw, dict):
        raise loc.error("goals", "expected a mapping of goal name to its definition")
    goals = tuple(_goal(loc, name, spec) for name, spec in goals_raw.items())
    partial = Definitions(goals=goals, timezone=timezone, session_timeout=timeout, source=source)

    funnels_raw = data.get("funnels") or {}
    if not isinstance(funnels_raw, dict):
        raise loc.error("funnels", "expected a mapping of funnel name to its definition")
    funnels = tuple(_funnel(loc, partial, name, spec) for name, spec in funnels_raw.items())

    from keystep.experiments.definitions import parse_experiment  # experiments are built from goals

    experiments_raw = data.get("experiments") or {}
    if not isinstance(experiments_raw, dict):
        raise loc.error("experiments", "expected a mapping of experiment key to its definition")
    by_name = {g.name: g for g in goals}
    experiments = tuple(parse_experiment(loc, by_name, key, spec) for key, spec in experiments_raw.items())
    return Definitions(goals=goals, funnels=funnels, experiments=experiments, timezone=timezone,
                       session_timeout=timeout, source=source)


def _known_keys(loc: _Located, data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise loc.error(where, f"unknown field; expected one of {', '.join(sorted(allowed))}")


def _enum(loc: _Located, enum: type[Enum], value: Any, path: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        options = ", ".join(str(e.value) for e in enum)
        raise loc.error(path, f"expected one of {options}; got {value!r}") from None


def _duration(loc: _Located, data: Mapping[str, Any], key: str, default: timedelta, path: str = "") -> timedelta:
    full = f"{path}.{key}" if path else key
    if key not in data:
        return default
    try:
        return parse_duration(data[key])
    except ValueError as exc:
        raise loc.error(full, str(exc)) from None


def _goal(loc: _Located, name: str, spec: Any) -> Goal:
    path = f"goals.{name}"
    if not isinstance(spec, dict):
        raise loc.error(path, "expected a mapping with kind, match and (for micro) category or (for macro) type")
    _known_keys(loc, spec, path, {"kind", "category", "type", "label", "match", "eligible", "value"})
    if "kind" not in spec:
        raise loc.error(path, "missing field `kind`: expected micro or macro")
    kind = _enum(loc, Kind, spec["kind"], f"{path}.kind")
    category = macro_type = None
    if kind is Kind.MICRO:
        if "type" in spec:
            raise loc.error(f"{path}.type", "`type` is for macro goals; micro goals take `category`")
        if "category" not in spec:
            raise loc.error(path, "missing field `category`: expected process_milestone or secondary_action")
        category = _enum(loc, Category, spec["category"], f"{path}.category")
    else:
        if "category" in spec:
            raise loc.error(f"{path}.category", "`category` is for micro goals; macro goals take `type`")
        if "type" not in spec:
            raise loc.error(path, "missing field `type`: expected revenue, lead or inquiry")
        macro_type = _enum(loc, MacroType, spec["type"], f"{path}.type")
    if "match" not in spec:
        raise loc.error(path, "missing field `match`: e.g. `match: {event: purchase}`")
    match = _matchers(loc, spec["match"], f"{path}.match")
    eligible = _matchers(loc, spec["eligible"], f"{path}.eligible") if "eligible" in spec else ()
    value = _value(loc, spec["value"], f"{path}.value") if "value" in spec else None
    return Goal(name=name, kind=kind, match=match, category=category, type=macro_type,
                label=str(spec.get("label", "")), eligible=eligible, value=value)


def _matchers(loc: _Located, spec: Any, path: str) -> tuple[Matcher, ...]:
    if isinstance(spec, str):
        return (Matcher(events=(spec,)),)
    if isinstance(spec, dict):
        return (_matcher(loc, spec, path),)
    if isinstance(spec, list) and spec:
        return tuple(_matcher(loc, item, f"{path}[{i}]") if isinstance(item, dict)
                     else _matchers(loc, item, f"{path}[{i}]")[0] for i, item in enumerate(spec))
    raise loc.error(path, "expected an event name, a matcher {event, path, url, where} or a list of matchers")


def _matcher(loc: _Located, spec: Mapping[str, Any], path: str) -> Matcher:
    _known_keys(loc, spec, path, {"event", "path", "url", "where"})
    if not spec:
        raise loc.error(path, "an empty matcher matches nothing; give event, path, url or where")
    events: tuple[str, ...] = ()
    if "event" in spec:
        raw = spec["event"]
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(e, str) and e for e in items):
            raise loc.error(f"{path}.event", "expected an event name or a list of event names")
        events = tuple(items)
    for key in ("path", "url"):
        if key in spec and not isinstance(spec[key], str):
            raise loc.error(f"{path}.{key}", "expected a glob pattern such as /checkout/*")
    conditions = _conditions(loc, spec.get("where", []), f"{path}.where")
    return Matcher(events=events, path=spec.get("path"), url=spec.get("url"), conditions=conditions)


_CONDITION_TEXT = re.compile(r"^\s*([\w.$-]+)\s*(!=|=|>|<|\bcontains\b|\bin\b)\s*(.+?)\s*$")


def _conditions(loc: _Located, spec: Any, path: str) -> tuple[Condition, ...]:
    """`where` takes a mapping {field: value} (equality) or a list of `field op value` strings or
    {field, op, value} mappings."""
    if isinstance(spec, dict) and not {"field", "op"} <= set(spec):
        return tuple(_condition(loc, k, "=", v, f"{path}.{k}") for k, v in spec.items())
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(spec, list) else path
        if isinstance(item, str):
            m = _CONDITION_TEXT.match(item)
            if not m:
                ops = "=, !=, >, <, contains, in"
                raise loc.error(where, f"expected `field op value` with op one of {ops}; got {item!r}")
            value: Any = m.group(3)
            if m.group(2) == "in":
                value = [v.strip() for v in value.strip("[]").split(",")]
            out.append(_condition(loc, m.group(1), m.group(2), value, where))
        elif isinstance(item, dict) and {"field", "op"} <= set(item):
            _known_keys(loc, item, where, {"field", "op", "value"})
            out.append(_condition(loc, str(item["field"]), item["op"], item.get("value"), where))
        else:
            raise loc.error(where, "expected `field op value` or {field, op, value}")
    return tuple(out)


def _condition(loc: _Located, field_name: str, op_text: Any, value: Any, path: str) -> Condition:
    op = _enum(loc, Op, op_text, path)
    if op is Op.IN:
        if not isinstance(value, list) or not value:
            raise loc.error(path, "`in` expects a non-empty list of values")
        return Condition(field_name, op, tuple(_scalar(loc, v, path) for v in value))
    if op in (Op.GT, Op.LT):
        try:
            return Condition(field_name, op, float(value))
        except (TypeError, ValueError):
            raise loc.error(path, f"`{op.value}` expects a number, got {value!r}") from None
    return Condition(field_name, op, _scalar(loc, value, path))


def _scalar(loc: _Located, value: Any, path: str) -> str | float:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value
    raise loc.error(path, f"expected a text or number value, got {value!r}")


def _value(loc: _Located, spec: Any, path: str) -> Value:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Value(fixed=float(spec))
    if not isinstance(spec, dict):
        raise loc.error(path, "expected a number, or {fixed: 5, currency: EUR} or {from: revenue, currency: EUR}")
    _known_keys(loc, spec, path, {"fixed", "from", "currency"})
    if ("fixed" in spec) == ("from" in spec):
        raise loc.error(path, "give exactly one of `fixed` (an amount) or `from` (a property such as revenue)")
    fixed = None
    if "fixed" in spec:
        try:
            fixed = float(spec["fixed"])
        except (TypeError, ValueError):
            raise loc.error(f"{path}.fixed", f"expected a number, got {spec['fixed']!r}") from None
    currency = spec.get("currency")
    if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        raise loc.error(f"{path}.currency", f"expected an ISO 4217 code such as EUR, got {currency!r}")
    source = spec.get("from")
    return Value(fixed=fixed, source=str(source) if source is not None else None, currency=currency)


def _funnel(loc: _Located, defs: Definitions, name: str, spec: Any) -> Funnel:
    path = f"funnels.{name}"
    if not isinstance(spec, dict):
        raise loc.error(path, "expected a mapping with steps, window, mode and unit")
    _known_keys(loc, spec, path, {"steps", "window", "mode", "unit", "label"})
    steps = spec.get("steps")
    if not isinstance(steps, list) or len(steps) < 2 or not all(isinstance(s, str) for s in steps):
        raise loc.error(f"{path}.steps", "expected a list of at least two goal or event names")
    return Funnel(
        name=name,
        steps=tuple(defs.step(s) for s in steps),
        window=_duration(loc, spec, "window", timedelta(days=1), path),
        mode=_enum(loc, FunnelMode, spec.get("mode", "ordered"), f"{path}.mode"),
        unit=_enum(loc, Unit, spec.get("unit", "visitor"), f"{path}.unit"),
    )


def adhoc_funnel(defs: Definitions, steps: Sequence[str], window: timedelta, mode: FunnelMode, unit: Unit,
                 name: str = "adhoc") -> Funnel:
    """A funnel given on the command line (`--steps a,b,c`): steps resolve to goals, else event names."""
    return Funnel(name=name, steps=tuple(defs.step(s) for s in steps), window=window, mode=mode, unit=unit)
