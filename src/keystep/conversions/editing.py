"""Changing the definitions file from code (the CLI, the API, the dashboard's editor) without losing its
comments or layout: load it round-trip, change the data, check the whole new text exactly as a
definitions file is checked, and only then write it. A change that does not pass leaves the file as it was
and raises the `DefinitionsError` that names the file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

from keystep.conversions.definitions import Definitions, DefinitionsError, parse_definitions


def edit_definitions(path: Path, change: Callable[[Any], None]) -> Definitions:
    """Apply `change` to the file's data (a ruamel CommentedMap), validate, write; the new definitions."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    yaml.preserve_quotes = True
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = yaml.load(text) if text.strip() else None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise DefinitionsError(str(path), None, "", "expected a mapping with `goals:` and `funnels:`")
    change(data)
    out = StringIO()
    yaml.dump(data, out)
    definitions = parse_definitions(out.getvalue(), str(path))
    path.write_text(out.getvalue(), encoding="utf-8")
    return definitions


def section(data: Any, name: str) -> Any:
    """The mapping under `name` (goals, funnels, experiments), made when absent."""
    from ruamel.yaml.comments import CommentedMap

    if data.get(name) is None:
        data[name] = CommentedMap()
    return data[name]


def add_entry(name: str, key: str, spec: dict[str, Any]) -> Callable[[Any], None]:
    """A change that adds `key` to the section `name`; refuses to replace an existing entry."""
    from ruamel.yaml.comments import CommentedMap

    def change(data: Any) -> None:
        entries = section(data, name)
        if key in entries:
            raise DefinitionsError("", None, f"{name}.{key}", "exists already")
        entries[key] = CommentedMap(spec)

    return change
