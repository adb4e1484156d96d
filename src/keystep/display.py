"""Numbers for people: the one way the CLI tables, the HTML report and written reasons format values."""

from __future__ import annotations

from keystep.stats.proportions import Rate

DASH = "–"


def percent(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def interval(rate: Rate, digits: int = 1) -> str:
    """`12.3–14.1%`: a rate's 95% interval."""
    if rate.lower is None or rate.upper is None:
        return DASH
    return f"{100 * rate.lower:.{digits}f}–{100 * rate.upper:.{digits}f}%"


def number(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def duration(seconds: float | None) -> str:
    """`42 s`, `3.5 min`, `12 h`, `2.1 d`: one decimal below ten, none above."""
    if seconds is None:
        return DASH
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {suffix}" if value >= 10 else f"{value:.1f} {suffix}".replace(".0 ", " ")
    return f"{seconds:.0f} s"
