"""The overview: every core question about a site answered at once, for the demo and the HTML report.

- `conversions`: every goal's rate over the range, grouped into macro types and micro categories
  (units: sessions, as GA4's session conversion rate);
- `trend`: the same per day (or week) of the unit's first event (with `conversions`, and the previous
  period's rates the dashboard compares with, from one statement: `run_range_conversions`);
- `funnel`: the definitions' first funnel (or the named one), broken down by `breakdown` (default
  device_type) with the segments that differ flagged;
- `time_to_convert`: first micro → first macro per visitor (Kaplan–Meier, not-yet-converted censored);
- `micro_macro` and `suggestions`: every micro goal against the first revenue macro, per visitor.

Visitors are the unit for time to convert and micro → macro because the path to a purchase often spans
sessions (a visitor views a product today and buys next week).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from keystep.analysis.conversions import ConversionReport, run_conversion_reports
from keystep.analysis.funnels import FunnelResult, run_funnel
from keystep.analysis.micro_macro import MicroMacroResult, run_micro_macro
from keystep.analysis.suggest import SuggestResult, compute_suggestions
from keystep.analysis.time_to_convert import TimeToConvertResult, run_time_to_convert
from keystep.backends.base import Backend
from keystep.conversions.definitions import Definitions, Unit
from keystep.query import Granularity, Query

DEFAULT_BREAKDOWN = "device_type"


@dataclass(frozen=True, slots=True)
class Overview:
    conversions: ConversionReport
    trend: ConversionReport
    funnel: FunnelResult | None  # None when the definitions have no funnel
    time_to_convert: TimeToConvertResult | None  # None without both micro and macro goals
    micro_macro: MicroMacroResult | None
    suggestions: SuggestResult | None


@dataclass(frozen=True, slots=True)
class RangeConversions:
    conversions: ConversionReport  # over the range
    trend: ConversionReport  # per day (or week) of the range
    previous: ConversionReport | None  # over the previous period, when asked for


def run_range_conversions(
    backend: Backend,
    definitions: Definitions,
    query: Query,
    *,
    previous: tuple[date, date] | None = None,
    granularity: Granularity = Granularity.DAY,
) -> RangeConversions:
    """Every goal per session over the query's range, per `granularity` and (optionally) over the
    `previous` days, from one statement; each report is the one `run_conversions` gives alone."""
    sessions = query.with_(unit=Unit.SESSION, breakdown=None, granularity=None)
    queries = [sessions, sessions.with_(granularity=granularity)]
    if previous is not None:
        queries.append(sessions.with_(start=previous[0], end=previous[1]))
    reports = run_conversion_reports(backend, definitions, queries)
    return RangeConversions(reports[0], reports[1], reports[2] if previous is not None else None)


def run_overview(
    backend: Backend,
    definitions: Definitions,
    query: Query,
    *,
    funnel: str | None = None,
    breakdown: str = DEFAULT_BREAKDOWN,
    granularity: Granularity = Granularity.DAY,
) -> Overview:
    """`query` gives the project, range and timezone; units and breakdowns are chosen per analysis."""
    sessions = query.with_(unit=Unit.SESSION, breakdown=None, granularity=None)
    visitors = query.with_(unit=Unit.VISITOR, breakdown=None, granularity=None)
    chosen = definitions.funnel(funnel) if funnel else (definitions.funnels[0] if definitions.funnels else None)
    related = bool(definitions.micro and definitions.macro)
    by_segment = visitors.with_(breakdown=breakdown)
    micro_macro = run_micro_macro(backend, definitions, by_segment) if related else None
    rates = run_range_conversions(backend, definitions, sessions, granularity=granularity)
    return Overview(
        conversions=rates.conversions,
        trend=rates.trend,
        funnel=run_funnel(backend, chosen, sessions.with_(breakdown=breakdown)) if chosen else None,
        time_to_convert=run_time_to_convert(backend, definitions, by_segment) if related else None,
        micro_macro=micro_macro,
        suggestions=compute_suggestions(micro_macro) if micro_macro else None,
    )
