"""The tables of the experiments pages: the list, the comparisons (p-values or chance to win, as the
experiment's method gives them), the surrogate predictions (labelled as predictions) and the plan.
Pure: results in, `Table`s out."""

from __future__ import annotations

from collections.abc import Sequence

from keystep.analysis.experiments import Comparison, ExperimentResult, MetricResult
from keystep.analysis.planning import ExperimentPlan
from keystep.display import DASH, number, p_value, percent
from keystep.experiments.definitions import Experiment, Method
from keystep.web.views import Table


def srm_text(result: ExperimentResult) -> str:
    srm = result.srm
    if not any(result.units):
        return "no exposures yet"
    verdict = "MISMATCH" if result.srm_mismatch else "ok"
    return f"{verdict} (p = {srm.p_value:.3g})"


def units_text(result: ExperimentResult) -> str:
    return " · ".join(f"{v}: {n:,}" for v, n in zip(result.variants, result.units, strict=True))


def experiments_table(rows: Sequence[tuple[Experiment, ExperimentResult]]) -> Table:
    out, marks = [], []
    for e, r in rows:
        variants = ", ".join(f"{v} ({w:.0%})" for v, w in zip(e.variants, e.weights, strict=True))
        out.append((e.title, e.key, variants, e.primary.goal.title if e.primary else DASH, e.method.value,
                    units_text(r), srm_text(r)))
        marks.append("lower" if r.srm_mismatch else "")
    headers = ("Experiment", "Key", "Variants (weights)", "Primary metric", "Method", "Exposed units",
               "Sample ratio")
    return Table("experiments", "Experiments", headers, tuple(out), marks=tuple(marks))


def signed(value: float | None) -> str:
    """A relative effect with its sign: `+4.2%`, `-1.0%`."""
    return DASH if value is None else f"{100 * value:+.1f}%"


def _mean(metric: MetricResult, mean: float | None) -> str:
    return percent(mean, 2) if metric.proportion else number(mean)


def _decision(c: Comparison) -> str:
    if c.error:
        return f"not estimable ({c.error})"
    word = ("better" if (c.effect or 0) > 0 else "worse") if c.significant else "inconclusive"
    return word + (" (CUPED)" if c.cuped else "")


def comparisons_table(result: ExperimentResult) -> Table:
    """Every metric and treatment against the control: the means, the relative effect with its interval and
    the p-values (sequential, frequentist) or the chance to win and expected losses (Bayesian)."""
    bayes = result.method is Method.BAYESIAN
    rows, marks = [], []
    for m in result.metrics:
        control = m.arms[0]
        arms = {a.variant: a for a in m.arms}
        for c in m.comparisons:
            interval = DASH if c.lower is None or c.upper is None else f"{signed(c.lower)} … {signed(c.upper)}"
            if bayes:
                stats = (percent(c.chance_to_win), DASH if c.risk is None else
                         f"{percent(c.risk[0], 2)} / {percent(c.risk[1], 2)}")
            else:
                stats = (p_value(c.p_value), p_value(c.adjusted_p))
            rows.append((m.label, m.role.value, c.variant, _mean(m, control.mean), _mean(m, arms[c.variant].mean),
                         signed(c.effect), interval, *stats, _decision(c)))
            marks.append("" if not c.significant else "higher" if (c.effect or 0) > 0 else "lower")
    control_name = result.variants[0]
    stats_headers = ("Chance to win", "Expected loss (keep / ship)") if bayes else ("p", "Adjusted p (Holm)")
    headers = ("Metric", "Role", "Variant", f"Control ({control_name})", "Variant's", "Relative effect",
               f"{1 - result.alpha:.0%} interval", *stats_headers, "Decision")
    return Table("comparisons", f"Metrics against {control_name} ({result.method.value})", headers, tuple(rows),
                 marks=tuple(marks))


def surrogates_table(result: ExperimentResult) -> Table:
    rows = tuple(
        (s.micro, s.variant, f"{100 * s.micro_change:+.2f} pp", percent(s.macro_rate_with, 2),
         percent(s.macro_rate_without, 2), signed(s.predicted_effect),
         DASH if s.lower is None or s.upper is None else f"{signed(s.lower)} … {signed(s.upper)}")
        for s in result.surrogates
    )
    headers = ("Micro metric", "Variant", "Measured change of the micro", "Macro rate with the micro (before)",
               "without it (before)", "PREDICTED macro effect", "interval of the prediction")
    return Table("predictions", "Predicted macro effects from the micro metrics (surrogate predictions, "
                 "not measurements)", headers, rows)


def plan_table(plan: ExperimentPlan) -> Table:
    rows = tuple(
        (c.label, c.kind, c.role, percent(c.baseline, 2) if c.proportion else number(c.baseline),
         DASH if c.units_fixed is None else f"{c.units_fixed:,}", number(c.days_fixed, 1),
         DASH if c.units_sequential is None else f"{c.units_sequential:,}", number(c.days_sequential, 1))
        for c in plan.candidates
    )
    headers = ("Metric", "Kind", "Role", "Baseline per unit", "Units (fixed horizon)", "Days (fixed horizon)",
               "Units (sequential)", "Days (sequential)")
    return Table("plan", f"Days to detect {plan.effect:+.0%} (relative), {plan.power:.0%} power, α = {plan.alpha}: "
                 "micro and macro metrics", headers, rows)
