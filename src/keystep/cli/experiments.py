"""`keystep experiment create|list|analyze`: experiments of the definitions file, analysed on the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from keystep.cli.common import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    ConfigOption,
    DbOption,
    EndOption,
    JsonOption,
    ProjectOption,
    StartOption,
    TzOption,
    build_query,
    console,
    emit_json,
    fail,
    open_definitions,
    run_on_store,
)
from keystep.conversions.definitions import Definitions, DefinitionsError, Unit
from keystep.conversions.editing import add_entry, edit_definitions
from keystep.display import number, p_value, percent
from keystep.experiments.definitions import Method, experiment_spec
from keystep.query import Query

experiments = typer.Typer(help="Experiments: define them, analyse them, plan them.", no_args_is_help=True)


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


@experiments.command("create")
def create(
    key: Annotated[str, typer.Argument(help="The experiment's key (also its hashing seed), e.g. green_button.")],
    variants: Annotated[str, typer.Option("--variants", help="Comma-separated; the first is the control.")],
    primary: Annotated[str, typer.Option("--primary", help="The metric decided on: GOAL, GOAL:value, GOAL:count.")],
    secondary: Annotated[str | None, typer.Option("--secondary", help="Comma-separated metrics.")] = None,
    guardrails: Annotated[str | None, typer.Option("--guardrails", help="Comma-separated metrics.")] = None,
    weights: Annotated[str | None, typer.Option("--weights", help="Comma-separated shares (default: equal).")] = None,
    window: Annotated[str | None, typer.Option("--window", help="Count conversions this long after exposure.")]
    = None,
    method: Annotated[Method, typer.Option("--method", help="sequential, frequentist or bayesian.")]
    = Method.SEQUENTIAL,
    label: Annotated[str | None, typer.Option("--label", help="A name for people.")] = None,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: JsonOption = False,
) -> None:
    """Add an experiment to the definitions file (its comments and layout are kept). The file is checked
    with the new experiment before it is written, with the same errors as any definitions file."""
    if not config.exists():
        fail(f"{config} does not exist (create it with `keystep init`)")
    try:
        spec = experiment_spec(_split(variants), primary, secondary=_split(secondary),
                               guardrails=_split(guardrails), weights=_split(weights), window=window, method=method,
                               label=label)
        edit_definitions(config, add_entry("experiments", key, spec))
    except (DefinitionsError, ValueError) as exc:
        fail(str(exc) if not isinstance(exc, DefinitionsError) or exc.source else f"{config}: {exc}")
    if as_json:
        emit_json({"experiment": key, "config": str(config), "definition": spec})
        return
    console.print(f"added experiment [bold]{key}[/] to {config}", highlight=False)


@experiments.command("list")
def list_experiments(config: ConfigOption = DEFAULT_CONFIG_PATH, as_json: JsonOption = False) -> None:
    """The experiments of the definitions file."""
    definitions = open_definitions(config)
    rows = [{"experiment": e.key, "label": e.title, "variants": list(e.variants), "weights": list(e.weights),
             "unit": e.unit.value, "method": e.method.value,
             "metrics": [{"metric": m.name, "role": m.role.value} for m in e.metrics]}
            for e in definitions.experiments]
    if as_json:
        emit_json(rows)
        return
    table = Table("experiment", "variants (weights)", "primary", "other metrics", "method")
    for e in definitions.experiments:
        table.add_row(e.title, ", ".join(f"{v} ({w:.0%})" for v, w in zip(e.variants, e.weights, strict=True)),
                      e.primary.name if e.primary else "–",
                      ", ".join(f"{m.name} ({m.role.value})" for m in e.metrics if m is not e.primary) or "–",
                      e.method.value)
    console.print(table)


@experiments.command("analyze")
def analyze(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    method: Annotated[Method | None, typer.Option("--method", help="Override the experiment's method.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write an HTML report here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per variant and metric: the effect on exposed units with its interval and p-value (or chance to win),
    the sample-ratio check first. Conversions count only after a unit's first exposure."""
    from keystep.analysis.experiments import run_experiment

    definitions, query = _experiment_query(config, key, project, start, end, tz)
    result = run_on_store(db, lambda store: run_experiment(store, definitions, key, query, method=method))
    if report is not None:
        from keystep.report.experiments import write_experiment_report

        write_experiment_report(result, report)
    if as_json:
        emit_json(result)
        return
    print_experiment(result)
    if report is not None:
        console.print(f"[bold]report:[/] {report.resolve()}", highlight=False)


@experiments.command("plan")
def plan(
    key: Annotated[str, typer.Argument(help="The experiment's key.")],
    effect: Annotated[float, typer.Option("--effect", help="The relative effect to detect, e.g. 0.05 for +5%.")]
    = 0.05,
    power: Annotated[float, typer.Option("--power", help="The chance to detect it when it is there.")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="The false-positive rate.")] = 0.05,
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    as_json: JsonOption = False,
) -> None:
    """Days each candidate metric (the experiment's, and every micro and macro goal) needs to detect
    --effect, from the store's traffic and baselines over the range: fixed horizon and sequential."""
    from keystep.analysis.planning import run_plan

    if not effect > 0 or not alpha < power < 1:
        fail("--effect must be positive and --power between --alpha and 1")
    definitions, query = _experiment_query(config, key, project, start, end, tz)
    result = run_on_store(db, lambda store: run_plan(store, definitions, key, query, effect=effect, power=power,
                                                     alpha=alpha))
    if as_json:
        emit_json(result)
        return
    console.print(f"[bold]Plan for {key}[/]: detect {effect:+.0%} (relative) with {power:.0%} power at α = {alpha}; "
                  f"{result.units_per_day:,.0f} new {definitions.experiment(key).unit.value}s a day "
                  f"(observed over {result.observed_days:.0f} days)", highlight=False, soft_wrap=True)
    table = Table(show_edge=False)
    for name in ("metric", "kind", "role", "baseline", "units (fixed)", "days (fixed)", "days (sequential)"):
        table.add_column(name, justify="left" if name in ("metric", "kind", "role") else "right")
    for c in result.candidates:
        baseline = percent(c.baseline, 2) if c.proportion else number(c.baseline)
        table.add_row(c.label, c.kind, c.role, baseline, "–" if c.units_fixed is None else f"{c.units_fixed:,}",
                      number(c.days_fixed, 1), number(c.days_sequential, 1))
    console.print(table)


def _experiment_query(config: Path, key: str, project: str | None, start: str | None, end: str | None,
                      tz: str | None) -> tuple[Definitions, Query]:
    definitions = open_definitions(config)
    try:
        experiment = definitions.experiment(key)
    except KeyError as exc:
        fail(str(exc.args[0]))
    return definitions, build_query(definitions, project=project, start=start, end=end, tz=tz,
                                    unit=experiment.unit, default_unit=Unit.VISITOR)


def print_experiment(result: Any) -> None:
    srm = result.srm
    counts = ", ".join(f"{v}: {n:,}" for v, n in zip(result.variants, result.units, strict=True))
    if srm.mismatch:
        console.print(Panel(f"[bold]Sample ratio mismatch[/] (p = {srm.p_value:.2g}): {counts}. The variants did "
                            "not get their configured shares; do not trust the effects below until the assignment "
                            "or tracking is fixed.", style="bold red"))
    console.print(f"[bold]{result.label}[/] ({result.method.value}, α = {result.alpha}): {counts}; "
                  f"sample ratio p = {srm.p_value:.3g}", highlight=False, soft_wrap=True)
    bayes = result.method is Method.BAYESIAN
    table = Table(show_edge=False)
    for name in ("metric", "role", *result.variants, "variant", "effect", "95% interval",
                 "chance to win" if bayes else "p", "" if bayes else "adj. p", "decision"):
        table.add_column(name, justify="left" if name in ("metric", "role", "variant", "decision") else "right")
    for m in result.metrics:
        means = [percent(a.mean, 2) if m.proportion else number(a.mean) for a in m.arms]
        for c in m.comparisons:
            interval = "–" if c.lower is None else f"{percent(c.lower)} … {percent(c.upper)}"
            decision = ("[green]better[/]" if (c.effect or 0) > 0 else "[red]worse[/]") if c.significant else "–"
            table.add_row(m.label, m.role.value, *means, c.variant, percent(c.effect), interval,
                          percent(c.chance_to_win) if bayes else p_value(c.p_value),
                          "" if bayes else p_value(c.adjusted_p), decision + (" (CUPED)" if c.cuped else ""))
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]note:[/] {warning}", highlight=False)
