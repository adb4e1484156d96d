"""Bound parameters for built SQL: every user-supplied value goes through `bind`, never into text."""

from __future__ import annotations

from typing import Any

from keystep.backends.base import SQL


class Params:
    """Collects the values of one statement under unique names (`$p0`, `$p1`, ...)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def sql(self, text: str) -> SQL:
        return SQL(text, dict(self.values))


def like_from_glob(pattern: str) -> str:
    """A glob (`*` any run, `?` one character) as a LIKE pattern with `\\` as the escape character."""
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)
