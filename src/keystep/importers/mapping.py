"""Which source column fills which canonical column: the `--map` and `--set` options of `keystep import`.

- `--map CANONICAL=SOURCE[,CANONICAL=SOURCE...]` reads a canonical column from a source column; the
  pseudo-source `@row` is the 1-based row number (for files with one row per session and no ids);
- `--set CANONICAL=VALUE` gives every row the same value (e.g. `--set event=session`);
- a canonical column neither mapped nor set is read from the source column of the same name, if any
  (names are case-sensitive);
- `project` comes from `--project` and `received_at` is the import time, so neither can be mapped;
- every source column that fills no canonical column goes into `properties`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keystep.events.schema import EVENT_COLUMN_NAMES

ROW_NUMBER = "@row"
NOT_MAPPABLE: Mapping[str, str] = {
    "project": "it comes from --project",
    "received_at": "it is the import time",
}
MAPPABLE: tuple[str, ...] = tuple(name for name in EVENT_COLUMN_NAMES if name not in NOT_MAPPABLE)


class MappingError(ValueError):
    """A `--map` or `--set` option that cannot be used; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """The explicit choices: canonical column → source column (or `@row`), canonical column → constant."""

    sources: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)

    def resolved_sources(self) -> dict[str, str]:
        """Every canonical column read from the source: the explicit mappings plus same-name columns."""
        explicit = self.sources.keys() | self.constants.keys()
        implicit = {name: name for name in MAPPABLE if name not in explicit}
        return {**implicit, **self.sources}

    def consumed(self) -> frozenset[str]:
        """Source columns that fill a canonical column (so they stay out of `properties`)."""
        return frozenset(self.resolved_sources().values()) - {ROW_NUMBER}

    def check_columns(self, columns: Iterable[str]) -> None:
        """Fail when an explicit mapping names a column the source does not have."""
        have = list(columns)
        for canonical, source in self.sources.items():
            if source != ROW_NUMBER and source not in have:
                raise MappingError(
                    f"--map {canonical}={source}: the file has no column {source!r}{_suggest(source, have)}"
                    f" (columns: {', '.join(have)})"
                )


def parse_mapping(map_specs: Sequence[str] = (), set_specs: Sequence[str] = ()) -> ColumnMapping:
    """Parse `--map` options (each a comma-separated list) and `--set` options (one assignment each)."""
    sources: dict[str, str] = {}
    for spec in map_specs:
        for item in spec.split(","):
            if not item.strip():
                continue
            canonical, source = _assignment(item, "--map")
            if not source:
                raise MappingError(f"--map {item.strip()}: expected CANONICAL=SOURCE_COLUMN")
            if canonical in sources:
                raise MappingError(f"--map: {canonical} is mapped twice ({sources[canonical]}, {source})")
            sources[canonical] = source
    constants: dict[str, str] = {}
    for spec in set_specs:
        canonical, value = _assignment(spec, "--set")
        if not value:
            raise MappingError(f"--set {spec.strip()}: expected CANONICAL=VALUE with a value")
        if canonical in constants:
            raise MappingError(f"--set: {canonical} is set twice")
        if canonical in sources:
            raise MappingError(f"{canonical} is both mapped (--map) and set (--set): choose one")
        constants[canonical] = value
    return ColumnMapping(sources=sources, constants=constants)


def _assignment(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise MappingError(f"{option} {item.strip()!r}: expected CANONICAL=...")
    if name in NOT_MAPPABLE:
        raise MappingError(f"{option} {name}: cannot be given, {NOT_MAPPABLE[name]}")
    if name not in MAPPABLE:
        raise MappingError(f"{option} {name}: not a canonical column{_suggest(name, MAPPABLE)}")
    return name, value.strip()


def _suggest(name: str, choices: Iterable[str]) -> str:
    options = list(choices)
    same_letters = [option for option in options if option.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
