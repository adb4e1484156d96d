"""What every store offers: run a built query, write canonical events, write rejections."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from keystep.events.schema import Kind


@dataclass(frozen=True, slots=True)
class SQL:
    """A statement and its bound parameters (`$name` placeholders). User input is never in `text`."""

    text: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rows:
    """A small result table: what analyses get back from the database."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(zip(self.columns, row, strict=True)) for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass(frozen=True, slots=True)
class Dialect:
    """Differences between databases, as data."""

    name: str
    types: Mapping[Kind, str]


class Backend(Protocol):
    dialect: Dialect

    def execute(self, query: SQL, relations: Mapping[str, pa.Table] | None = None) -> Rows:
        """Run a query; `relations` are Arrow tables it may read by name, as if they were tables."""
        ...

    def execute_arrow(self, query: SQL) -> pa.Table:
        """Run a query whose result is large (one row per unit, say) and return it as an Arrow table."""
        ...

    def insert_events(self, table: pa.Table) -> int:
        """Store canonical events; returns how many were new (duplicates on (project, event_id) are dropped)."""
        ...

    def insert_rejected(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Rows into a schema table other than events; rows whose primary key is stored are ignored."""
        ...

    def write(self, query: SQL) -> int:
        """An UPDATE or DELETE through the one writer; returns the rows changed."""
        ...

    def close(self) -> None: ...
