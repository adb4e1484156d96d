"""`suggest`: which micro conversions are most worth tracking as leading indicators of the macro.

The rule, in full:

- **Score** = `preceded_share − frequency`: the share of macro units the micro preceded minus the share
  of all units that did it, i.e. how over-represented it is among units that reached the macro. With f the
  frequency, r₁ the macro rate of units that did it and r the overall macro rate, the score is
  f·(r₁ − r)/r: it grows with both frequency and lift, is 0 for a micro that says nothing about the macro,
  negative for one that goes with fewer macros, and stays finite when no unit without it converts.
- **Gate**: a micro is *significant* when its lift is above 1 at 95% (the lift interval's lower bound
  exceeds 1, i.e. p < 0.05 and lift > 1).
- **Recommended**: the significant micros by score, at most `MAX_RECOMMENDED` (10); when fewer than
  `MIN_RECOMMENDED` (5) are significant, the best of the rest by score fill up to 5, each with a caveat in
  its reason. A micro that no unit did (before its macro) is never recommended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from keystep.analysis.micro_macro import MicroEffect, MicroMacroResult
from keystep.conversions.definitions import Unit
from keystep.display import duration

MIN_RECOMMENDED = 5
MAX_RECOMMENDED = 10

RULE = (
    "score = share of macro units the micro preceded − share of all units that did it "
    "(= frequency × (rate with it − overall rate) ÷ overall rate); "
    "significant = lift > 1 at 95%; recommended = the significant micros by score (at most 10), "
    "filled up to 5 with the best of the rest"
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    rank: int
    goal: str
    label: str
    score: float | None
    significant: bool
    recommended: bool
    reason: str
    frequency: float | None
    lift: float | None
    lift_lower: float | None
    lift_upper: float | None
    p_value: float | None
    preceded_share: float | None
    lag_median_s: float | None
    value_per_unit: float | None
    incremental_value: float | None


@dataclass(frozen=True, slots=True)
class SuggestResult:
    macro: str
    macro_label: str
    unit: Unit
    project: str | None
    start: date | None
    end: date | None
    units: int
    macro_units: int
    rule: str
    recommended: tuple[Suggestion, ...]
    others: tuple[Suggestion, ...]


def compute_score(effect: MicroEffect) -> float | None:
    if effect.preceded_share is None or effect.frequency is None:
        return None
    return effect.preceded_share - effect.frequency


def is_significant(effect: MicroEffect) -> bool:
    if effect.lift.lower is not None:
        return effect.lift.lower > 1.0
    return (
        # no unit without the micro converted: the lift is unbounded; significant when the did-group's rate
        # is above the did-not group's Wilson upper bound
        effect.lift.ratio is None
        and effect.did.rate is not None
        and effect.did_not.upper is not None
        and effect.did_not.macro_units == 0
        and effect.did.lower is not None
        and effect.did.lower > effect.did_not.upper
    )




def _reason(effect: MicroEffect, significant: bool, unit: Unit, macro: str) -> str:
    parts = []
    lift = effect.lift
    if lift.ratio is not None:
        strength = "strong" if lift.ratio >= 3 else "moderate" if lift.ratio >= 1.5 else "weak"
        if lift.ratio < 1:
            strength = "negative"
        interval = (
            f" [{lift.lower:.1f}, {lift.upper:.1f}]"
            if lift.lower is not None and lift.upper is not None
            else ""
        )
        parts.append(f"{strength} lift {lift.ratio:.1f}×{interval}")
    elif effect.did_not.units and effect.did_not.macro_units == 0 and effect.did.macro_units:
        parts.append(f"no {macro} conversion without it")
    if effect.frequency is not None:
        word = "frequent" if effect.frequency >= 0.2 else "common" if effect.frequency >= 0.05 else "rare"
        parts.append(f"{word} ({effect.frequency:.0%} of {unit.value}s)")
    if effect.preceded_share is not None:
        parts.append(f"precedes {effect.preceded_share:.0%} of {macro} conversions")
    if effect.lag_median_s is not None:
        parts.append(f"median {duration(effect.lag_median_s)} before")
    text = ", ".join(parts)
    if not significant:
        p = f" (p = {lift.p_value:.2g})" if lift.p_value is not None else ""
        text += f"; not a significant positive lift{p}"
    return text


def compute_suggestions(result: MicroMacroResult) -> SuggestResult:
    """Rank the micro goals of `result.overall` by the rule in the module docstring."""
    group = result.overall
    scored = []
    for effect in group.micro:
        score = compute_score(effect)
        scored.append((effect, score, is_significant(effect)))
    order = sorted(scored, key=lambda t: (not t[2], t[1] is None, -(t[1] or 0.0), t[0].goal))
    significant = [t for t in order if t[2]][:MAX_RECOMMENDED]
    rest = [t for t in order if t not in significant]
    fill = [t for t in rest if t[0].did.units > 0 and t[1] is not None][
        : max(0, MIN_RECOMMENDED - len(significant))
    ]
    chosen = significant + fill
    others = [t for t in order if t not in chosen]
    suggestions = []
    for rank, (effect, score, sig) in enumerate(chosen + others, start=1):
        suggestions.append(
            Suggestion(
                rank=rank,
                goal=effect.goal,
                label=effect.label,
                score=score,
                significant=sig,
                recommended=rank <= len(chosen),
                reason=_reason(effect, sig, result.unit, result.macro),
                frequency=effect.frequency,
                lift=effect.lift.ratio,
                lift_lower=effect.lift.lower,
                lift_upper=effect.lift.upper,
                p_value=effect.lift.p_value,
                preceded_share=effect.preceded_share,
                lag_median_s=effect.lag_median_s,
                value_per_unit=effect.value_per_unit,
                incremental_value=effect.incremental_value.difference,
            )
        )
    return SuggestResult(
        macro=result.macro,
        macro_label=result.macro_label,
        unit=result.unit,
        project=result.project,
        start=result.start,
        end=result.end,
        units=group.units,
        macro_units=group.macro_units,
        rule=RULE,
        recommended=tuple(s for s in suggestions if s.recommended),
        others=tuple(s for s in suggestions if not s.recommended),
    )
