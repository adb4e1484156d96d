"""What a dashboard page shows, built from analysis results: tables of strings, charts as plotly JSON.

Pure: results in, plain data out; the templates only place it. Every string that came from events or
the definitions file is escaped by the templates (Jinja2 autoescape); charts travel as JSON in
`<script type="application/json">` blocks (never executed) that `static/app.js` hands to plotly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from keystep.analysis.conversions import ConversionReport, ConversionStats
from keystep.display import interval, number, percent
from keystep.report.charts import Figure, figure_json

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# URL parameters that belong to one request (an export, a notice, an open editor), never carried on
TRANSIENT_KEYS = ("export", "saved", "deleted", "edit", "edit_funnel")


@dataclass(frozen=True, slots=True)
class Table:
    """A table for a page (and its CSV export): a title, headers and rows of display strings."""

    key: str  # names the table in the export URL
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    groups: tuple[int, ...] = ()  # indexes of rows that are group headings
    marks: tuple[str, ...] = ()  # per row: "", "higher" or "lower" (significant segments)


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    spec: str  # plotly figure JSON


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's state, all in the URL so any view can be bookmarked and shared."""

    project: str | None = None
    start: date | None = None
    end: date | None = None
    compare: bool = True  # against the previous period of the same length
    breakdown: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: Any) -> str:
        """This view's URL query (with its page's own parameters), with `changes` applied."""
        extra = {k: v for k, v in self.extra.items() if k not in TRANSIENT_KEYS}
        values: dict[str, Any] = {"project": self.project, "from": self.start, "to": self.end,
                                  "compare": None if self.compare else "off", "breakdown": self.breakdown,
                                  **extra}
        values.update(changes)
        return urlencode({k: str(v) for k, v in values.items() if v not in (None, "")})

    def nav_query(self) -> str:
        """The state every page shares (project, range, comparison, breakdown): for links to other pages."""
        return self.query(**{k: None for k in self.extra})

    def get(self, key: str, default: str = "") -> str:
        """A page's own URL parameter (e.g. `funnel`, `macro`)."""
        return self.extra.get(key, default)

    def previous(self) -> tuple[date, date] | None:
        if self.start is None or self.end is None:
            return None
        days = (self.end - self.start).days + 1
        return self.start - timedelta(days=days), self.start - timedelta(days=1)


def chart(key: str, fig: Figure) -> Chart:
    return Chart(key, figure_json(fig))


def change(now: float | None, before: float | None) -> str:
    """A change vs the previous period: relative, with its sign."""
    if now is None or before is None or before == 0:
        return "–"
    return f"{(now / before - 1) * 100:+.1f}%"


def conversion_table(report: ConversionReport, previous: ConversionReport | None, key: str = "conversions",
                     title: str = "Macro and micro conversions") -> Table:
    before = {g.goal: g.total for g in previous.goals} if previous else {}
    rows: list[tuple[str, ...]] = []
    groups = []
    for group in report.groups:
        groups.append(len(rows))
        rows.append((group.title,))
        for g in group.goals:
            rows.append(stats_row(g.title, g.total, g.currency, before.get(g.goal)))
    headers = ("Goal", f"Eligible {report.unit.value}s", "Converted", "Rate", "95% interval", "Actions / unit",
               "Value", "vs previous period")
    return Table(key, title, headers, tuple(rows), tuple(groups))


def stats_row(title: str, s: ConversionStats, currency: str | None, before: ConversionStats | None) -> tuple[str, ...]:
    """A goal's (or a segment's) row: units, rate, interval, actions, value, change against `before`."""
    unit = f" {currency}" if currency else ""
    return (title, f"{s.eligible_units:,}", f"{s.converted_units:,}", percent(s.rate.estimate, 2),
            interval(s.rate, 2), number(s.actions_per_unit), "–" if s.value is None else number(s.value) + unit,
            change(s.rate.estimate, before.rate.estimate if before else None))


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) starts with `'`."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralize(h) for h in table.headers])
    for i, row in enumerate(table.rows):
        if i in table.groups:
            writer.writerow([neutralize(row[0])])
        else:
            writer.writerow([neutralize(c) for c in row])
    return out.getvalue()


def find_table(tables: Sequence[Table], key: str) -> Table | None:
    return next((t for t in tables if t.key == key), None)
