"""Experiments in the definitions file: variants and weights, targeting, metrics built from goals.

```yaml
experiments:
  green_button:
    label: Green checkout button
    variants: [control, green]        # the first is the control
    weights: [0.5, 0.5]               # default: equal
    coverage: 1.0                     # share of eligible units in the experiment
    hash_version: 2                   # GrowthBook's hashing (1 or 2); seed defaults to the key
    unit: visitor                     # visitor | user
    targeting: {where: ["device_type = mobile"]}   # conditions on the exposure event
    primary: purchase                 # a goal: the share of exposed units that converted
    secondary: [add_to_cart, "purchase:value"]      # GOAL, GOAL:value (value per unit), GOAL:count,
                                      # or a ratio such as "purchase:value/view_item:count"
    guardrails: ["newsletter_signup"]
    window: 7d                        # conversions counted this long after the first exposure
    method: sequential                # sequential (peeking-safe, default) | frequentist | bayesian
```

An exposure is an event named `experiment_exposure` (or GrowthBook's `Experiment Viewed`) whose
properties give the experiment (`experiment`, `experiment_id` or `experiment_key`) and the variant
(`variant`, `variation_id` or `variant_id`: a key, or a 0-based index). A unit counts once, in the variant
of its first exposure; only conversions after it count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keystep.conversions.definitions import Goal, Matcher, Unit

EXPOSURE_EVENTS: tuple[str, ...] = ("experiment_exposure", "Experiment Viewed")
EXPERIMENT_PROPERTIES: tuple[str, ...] = ("experiment", "experiment_id", "experiment_key")
VARIANT_PROPERTIES: tuple[str, ...] = ("variant", "variation_id", "variant_id")


class Method(Enum):
    SEQUENTIAL = "sequential"
    FREQUENTIST = "frequentist"
    BAYESIAN = "bayesian"


class Measure(Enum):
    CONVERSION = "conversion"  # share of exposed units with at least one conversion (a proportion)
    VALUE = "value"  # the goal's value per exposed unit (a mean)
    COUNT = "count"  # the goal's actions per exposed unit (a mean)


class Role(Enum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    GUARDRAIL = "guardrail"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str  # as written: `purchase`, `purchase:value`, `purchase:value/view_item:count`
    goal: Goal
    measure: Measure
    role: Role
    over: Metric | None = None  # a ratio's denominator: Σ this metric ÷ Σ `over`, per exposed unit

    @property
    def proportion(self) -> bool:
        return self.measure is Measure.CONVERSION and self.over is None


@dataclass(frozen=True, slots=True)
class Experiment:
    key: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    metrics: tuple[Metric, ...]
    unit: Unit
    label: str = ""
    coverage: float = 1.0
    hash_version: int = 2
    seed: str = ""
    targeting: tuple[Matcher, ...] = ()
    window: timedelta | None = None
    method: Method = Method.SEQUENTIAL

    @property
    def title(self) -> str:
        return self.label or self.key

    @property
    def primary(self) -> Metric | None:
        return next((m for m in self.metrics if m.role is Role.PRIMARY), None)


def parse_metric(name: str, goals: dict[str, Goal], role: Role) -> Metric:
    """`GOAL`, `GOAL:value` or `GOAL:count`, or a ratio `NUMERATOR/DENOMINATOR` of two of them (e.g.
    `purchase:value/view_item:count`, revenue per product view); raises ValueError naming what is wrong."""
    if "/" in name:
        numerator, _, denominator = name.partition("/")
        top, bottom = parse_metric(numerator, goals, role), parse_metric(denominator, goals, role)
        return Metric(name, top.goal, top.measure, role, over=bottom)
    goal_name, _, measure = name.partition(":")
    if goal_name not in goals:
        raise ValueError(f"{goal_name!r} is not a goal of the file; defined: {', '.join(goals) or 'none'}")
    kinds = {"": Measure.CONVERSION, "value": Measure.VALUE, "count": Measure.COUNT}
    if measure not in kinds:
        raise ValueError(f"{name!r}: expected GOAL, GOAL:value or GOAL:count")
    goal = goals[goal_name]
    if kinds[measure] is Measure.VALUE and goal.value is None:
        raise ValueError(f"{name!r}: the goal {goal_name!r} has no value")
    return Metric(name, goal, kinds[measure], role)


def parse_experiment(loc: Any, goals: dict[str, Goal], key: str, spec: Any) -> Experiment:
    """One experiment of the file; `loc` locates errors (`keystep.conversions.definitions._Located`)."""
    from keystep.conversions.definitions import Unit, _duration, _enum, _known_keys, _matchers

    path = f"experiments.{key}"
    if not isinstance(spec, dict):
        raise loc.error(path, "expected a mapping with variants and a primary metric")
    _known_keys(loc, spec, path, {"label", "variants", "weights", "coverage", "hash_version", "seed", "unit",
                                  "targeting", "primary", "secondary", "guardrails", "window", "method"})
    variants = spec.get("variants")
    if not isinstance(variants, list) or len(variants) < 2 or not all(isinstance(v, str) and v for v in variants) \
            or len(set(variants)) != len(variants):
        raise loc.error(f"{path}.variants", "expected a list of at least two distinct variant names")
    weights = spec.get("weights", [1 / len(variants)] * len(variants))
    if not isinstance(weights, list) or len(weights) != len(variants) or not all(
            isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise loc.error(f"{path}.weights", f"expected {len(variants)} non-negative numbers, one per variant")
    total = float(sum(weights))
    coverage = spec.get("coverage", 1.0)
    if not isinstance(coverage, int | float) or not 0 < coverage <= 1:
        raise loc.error(f"{path}.coverage", "expected a share between 0 (exclusive) and 1")
    hash_version = spec.get("hash_version", 2)
    if hash_version not in (1, 2):
        raise loc.error(f"{path}.hash_version", "expected 1 or 2 (GrowthBook's hash versions)")
    if "primary" not in spec:
        raise loc.error(path, "missing field `primary`: the goal the experiment is decided on")
    metrics = []
    for role, field_name in ((Role.PRIMARY, "primary"), (Role.SECONDARY, "secondary"),
                             (Role.GUARDRAIL, "guardrails")):
        raw = spec.get(field_name, [])
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or (
                role is Role.PRIMARY and len(names) != 1):
            what = "one metric" if role is Role.PRIMARY else "a list of metrics"
            raise loc.error(f"{path}.{field_name}",
                            f"expected {what}: GOAL, GOAL:value, GOAL:count or a ratio NUMERATOR/DENOMINATOR")
        for name in names:
            try:
                metrics.append(parse_metric(name, goals, role))
            except ValueError as exc:
                raise loc.error(f"{path}.{field_name}", str(exc)) from None
    unit = _enum(loc, Unit, spec.get("unit", "visitor"), f"{path}.unit")
    if unit is Unit.SESSION:
        raise loc.error(f"{path}.unit", "experiments assign visitors or users; a session is too short-lived")
    window = _duration(loc, spec, "window", timedelta(0), path) if "window" in spec else None
    return Experiment(
        key=key, variants=tuple(variants), weights=tuple(float(w) / total for w in weights), metrics=tuple(metrics),
        unit=unit, label=str(spec.get("label", "")), coverage=float(coverage), hash_version=int(hash_version),
        seed=str(spec.get("seed", "")),
        targeting=_matchers(loc, spec["targeting"], f"{path}.targeting") if "targeting" in spec else (),
        window=window, method=_enum(loc, Method, spec.get("method", "sequential"), f"{path}.method"),
    )


def experiment_spec(variants: list[str], primary: str, *, secondary: list[str] | None = None,
                    guardrails: list[str] | None = None, weights: list[str] | None = None,
                    window: str | None = None, method: Method = Method.SEQUENTIAL, label: str | None = None
                    ) -> dict[str, Any]:
    """An experiment's entry for the definitions file, from what the CLI or the API was given."""
    spec: dict[str, Any] = {"variants": variants, "primary": primary}
    if label:
        spec["label"] = label
    if weights:
        try:
            spec["weights"] = [float(w) for w in weights]
        except ValueError:
            raise ValueError(f"weights: expected numbers, got {weights!r}") from None
    for name, value in (("secondary", secondary), ("guardrails", guardrails)):
        if value:
            spec[name] = value
    if window:
        spec["window"] = window
    spec["method"] = method.value
    return spec
