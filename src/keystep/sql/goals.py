"""Goal matchers and values as SQL expressions over one row of `events`."""

from __future__ import annotations

from collections.abc import Sequence

from keystep.conversions.definitions import Condition, Matcher, Op, Value
from keystep.events.schema import COLUMNS_BY_NAME, Kind
from keystep.sql.params import Params, like_from_glob


def build_field(name: str, params: Params) -> str:
    """A canonical column by name, else a property of the `properties` JSON object (as text)."""
    if name in COLUMNS_BY_NAME and COLUMNS_BY_NAME[name].kind is not Kind.JSON:
        return name
    return f"json_extract_string(properties, {params.bind(json_path(name))})"


def json_path(name: str) -> str:
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_condition(condition: Condition, params: Params) -> str:
    field = build_field(condition.field, params)
    text = f"CAST({field} AS VARCHAR)"
    number = f"TRY_CAST({field} AS DOUBLE)"
    value = condition.value
    match condition.op:
        case Op.EQ if isinstance(value, float):
            return f"({number} = {params.bind(value)})"
        case Op.EQ:
            return f"({text} = {params.bind(value)})"
        case Op.NE if isinstance(value, float):
            return f"coalesce({number} <> {params.bind(value)}, true)"
        case Op.NE:
            return f"coalesce({text} <> {params.bind(value)}, true)"
        case Op.CONTAINS:
            return f"coalesce(contains({text}, {params.bind(str(value))}), false)"
        case Op.GT:
            return f"coalesce({number} > {params.bind(value)}, false)"
        case Op.LT:
            return f"coalesce({number} < {params.bind(value)}, false)"
        case Op.IN:
            values = value if isinstance(value, tuple) else (value,)
            if all(isinstance(v, float) for v in values):
                return f"coalesce({number} IN ({', '.join(params.bind(v) for v in values)}), false)"
            return f"coalesce({text} IN ({', '.join(params.bind(_text(v)) for v in values)}), false)"
    raise ValueError(f"unsupported operator {condition.op}")


def _text(value: str | float) -> str:
    return format(value, "g") if isinstance(value, float) else value


def build_matcher(matcher: Matcher, params: Params) -> str:
    parts: list[str] = []
    if len(matcher.events) == 1:
        parts.append(f"event = {params.bind(matcher.events[0])}")
    elif matcher.events:
        parts.append(f"event IN ({', '.join(params.bind(e) for e in matcher.events)})")
    if matcher.path is not None:
        parts.append(f"coalesce(path LIKE {params.bind(like_from_glob(matcher.path))} ESCAPE '\\', false)")
    if matcher.url is not None:
        parts.append(f"coalesce(url LIKE {params.bind(like_from_glob(matcher.url))} ESCAPE '\\', false)")
    parts.extend(build_condition(c, params) for c in matcher.conditions)
    return "(" + " AND ".join(parts) + ")" if parts else "true"


def build_match(matchers: Sequence[Matcher], params: Params) -> str:
    """Any of the matchers (OR); each matcher's criteria AND-ed."""
    if not matchers:
        return "false"
    if len(matchers) == 1:
        return build_matcher(matchers[0], params)
    return "(" + " OR ".join(build_matcher(m, params) for m in matchers) + ")"


def build_value(value: Value | None, params: Params) -> str:
    """The value one matching event carries: fixed, or read from a column/property; 0 when absent."""
    if value is None:
        return "0.0"
    if value.fixed is not None:
        return f"CAST({params.bind(value.fixed)} AS DOUBLE)"
    assert value.source is not None
    return f"coalesce(TRY_CAST({build_field(value.source, params)} AS DOUBLE), 0.0)"
