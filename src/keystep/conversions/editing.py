"""Changing the definitions file from code (the CLI, the API, the dashboard's editor) without losing its
comments or layout: load it round-trip, change the data, check the whole new text exactly as a
definitions file is checked, and only then write it. A change that does not pass leaves the file as it was
and raises the `DefinitionsError` that names the file, the line and the field."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

from keystep.conversions.definitions import Definitions, DefinitionsError, parse_definitions

_lock = threading.Lock()  # one edit at a time: two concurrent edits must not lose one another


def round_trip() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 120
    return yaml


def change_text(text: str, change: Callable[[Any], None], source: str = "<memory>") -> str:
    """`text` with `change` applied to its data (a ruamel CommentedMap), comments and layout kept."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    yaml = round_trip()
    try:
        data = yaml.load(text) if text.strip() else None
    except YAMLError as exc:
        raise DefinitionsError(source, None, "", f"not valid YAML, fix it by hand first: {exc}") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise DefinitionsError(source, None, "", "expected a mapping with `goals:` and `funnels:`")
    change(data)
    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def edit_definitions(path: Path, change: Callable[[Any], None]) -> Definitions:
    """Apply `change` to the file (created when missing), check the whole new text, then replace the file
    atomically; the new definitions. Nothing is written when the change or the check fails."""
    with _lock:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        new = change_text(text, change, str(path))
        definitions = parse_definitions(new, str(path))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(new)
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
