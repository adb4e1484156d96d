"""`keystep stats compare FILE.csv` and `keystep stats srm`: the statistics engine on summary numbers.

For analysts who have only per-variant totals (from a spreadsheet, another tool or a SQL query): one row per
variant, ``variant,n,sum[,sum_squares]``, the first row the control. Each treatment is compared with the
control by a fixed-horizon Welch test, an always-valid sequential test or a Bayesian analysis (flat prior),
and the unit counts are checked for a sample ratio mismatch.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from keystep.cli.common import JsonOption, console, emit_json, fail
from keystep.display import DASH, p_value, percent
from keystep.stats.bayesian import GaussianPrior, bayesian_test_from_effect
from keystep.stats.effects import BASELINE_ZERO, EffectEstimate, compute_effect
from keystep.stats.frequentist import FrequentistResult, welch_test_from_effect
from keystep.stats.sequential import DEFAULT_TUNING, SequentialResult, sequential_test_from_effect
from keystep.stats.srm import DEFAULT_SRM_THRESHOLD, SrmResult, compute_srm
from keystep.stats.sufficient import MeanStats, MetricStats, ProportionStats

__all__ = ["compare", "srm", "stats"]

stats = typer.Typer(
    help="Statistics on summary numbers: compare variants from a CSV of totals, check a sample ratio.",
    no_args_is_help=True,
)


class MetricType(StrEnum):
    PROPORTION = "proportion"
    MEAN = "mean"


class Method(StrEnum):
    FREQUENTIST = "frequentist"
    SEQUENTIAL = "sequential"
    BAYESIAN = "bayesian"


class Difference(StrEnum):
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


# Decisions, for people (the sentence) and for programs (the code).
HIGHER = "higher"
LOWER = "lower"
INCONCLUSIVE = "inconclusive"
NOT_ESTIMABLE = "not_estimable"

WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="The intended split, one weight per variant in order, e.g. 0.5,0.5 or 1,1,2 (default: equal).",
    ),
]


# -- reading the file -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantRow:
    """One line of the file: the variant's name, its units and its metric's statistics."""

    variant: str
    line: int
    stats: MetricStats


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        fail(f"{where}, column {column}: expected a number, got {text!r}")
    if not math.isfinite(value):
        fail(f"{where}, column {column}: expected a finite number, got {text!r}")
    return value


def read_variants(path: Path, metric_type: MetricType) -> list[VariantRow]:
    """The variants of a ``variant,n,sum[,sum_squares]`` CSV, checked row by row (errors name the line)."""
    if not path.is_file():
        fail(f"no file at {path}")
    expected = ["variant", "n", "sum"] + (["sum_squares"] if metric_type is MetricType.MEAN else [])
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [name.strip().lower() for name in next(reader, [])]
            records = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        fail(f"{path}: not a readable CSV file ({exc})")
    if not header or not any(header):
        fail(f"{path} is empty: expected a header line {','.join(expected)} and one line per variant")
    missing = [name for name in expected if name not in header]
    if missing:
        hint = ""
        if missing == ["sum_squares"]:
            hint = " (--type mean needs Σx² per variant to estimate the variance)"
        fail(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}{hint}; "
             f"the header is {','.join(header)!r}, expected {','.join(expected)}")
    unknown = [name for name in header if name not in expected]
    if unknown:
        hint = ""
        if unknown == ["sum_squares"]:
            hint = " (a proportion's Σx² is its sum; for a mean metric use --type mean)"
        fail(f"{path}: unexpected column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{hint}; "
             f"expected {','.join(expected)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        fail(f"{path}: column {', '.join(duplicated)} appears more than once")
    col = {name: header.index(name) for name in expected}
    rows: list[VariantRow] = []
    seen: dict[str, int] = {}
    for line, record in records:
        if len(record) != len(header):
            fail(f"{path}, line {line}: {len(record)} fields, the header has {len(header)}")
        variant = record[col["variant"]].strip()
        if not variant:
            fail(f"{path}, line {line}, column variant: empty variant name")
        if variant in seen:
            fail(f"{path}, line {line}, column variant: {variant!r} already given on line {seen[variant]}")
        seen[variant] = line
        where = f"{path}, line {line} (variant {variant!r})"
        n_value = _number(record[col["n"]], where, "n")
        if n_value != int(n_value):
            fail(f"{where}, column n: expected a whole number of units, got {record[col['n']]!r}")
        if n_value <= 0:
            fail(f"{where}, column n: expected a positive number of units, got {record[col['n']]!r}")
        n = int(n_value)
        total = _number(record[col["sum"]], where, "sum")
        if metric_type is MetricType.PROPORTION:
            if total < 0:
                fail(f"{where}, column sum: conversions cannot be negative, got {record[col['sum']]!r}")
            if total > n:
                fail(f"{where}, column sum: {record[col['sum']]} conversions is more than the n = {n} units "
                     "(a proportion counts each unit at most once; use --type mean for counts per unit)")
            rows.append(VariantRow(variant, line, ProportionStats(n, total)))
        else:
            squares = _number(record[col["sum_squares"]], where, "sum_squares")
            if squares < 0 or squares < total**2 / n * (1 - 1e-9):
                fail(f"{where}, column sum_squares: {record[col['sum_squares']]} is less than sum²/n = "
                     f"{total**2 / n:.6g}, so the variance would be negative (is it Σx², not the variance?)")
            rows.append(VariantRow(variant, line, MeanStats(n, total, squares)))
    if len(rows) < 2:
        fail(f"{path}: {len(rows)} variant{'' if len(rows) == 1 else 's'}; need the control (first row) "
             "and at least one treatment")
    return rows


def parse_numbers(text: str, option: str, *, whole: bool) -> list[float]:
    values: list[float] = []
    for k, part in enumerate(text.split(","), start=1):
        try:
            value = float(part.strip())
        except ValueError:
            fail(f"{option}: item {k} is not a number: {part.strip()!r}")
        if not math.isfinite(value) or value < 0:
            fail(f"{option}: item {k} must be a non-negative number, got {part.strip()!r}")
        if whole and value != int(value):
            fail(f"{option}: item {k} must be a whole number, got {part.strip()!r}")
        values.append(value)
    return values


def parse_weights(text: str | None, arms: int) -> list[float]:
    if text is None:
        return [1.0 / arms] * arms
    weights = parse_numbers(text, "--weights", whole=False)
    if len(weights) != arms:
        fail(f"--weights: {len(weights)} weights for {arms} variants (give one per variant, in order)")
    if sum(1 for w in weights if w > 0) < 2:
        fail("--weights: at least two variants need a positive weight")
    return weights


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        fail(f"--alpha: expected a level between 0 and 1 (e.g. 0.05), got {alpha}")


# -- the analysis ----------------------------------------------------------------------------------------


def srm_data(counts: list[float], weights: list[float], result: SrmResult) -> dict[str, Any]:
    total = sum(weights)
    return {
        "counts": [int(c) for c in counts],
        "weights": [w / total for w in weights],
        "expected": list(result.expected),
        "chi_square": result.chi_square,
        "dof": result.dof,
        "p_value": result.p_value,
        "threshold": result.threshold,
        "mismatch": result.mismatch,
    }


def _variant_data(row: VariantRow) -> dict[str, Any]:
    s = row.stats
    data: dict[str, Any] = {"variant": row.variant, "n": s.n, "sum": s.sum}
    if isinstance(s, MeanStats):
        data["sum_squares"] = s.sum_squares
    data.update(mean=s.mean, variance=s.variance)
    return data


def _not_estimable(effect: EffectEstimate) -> str:
    if effect.error == BASELINE_ZERO:
        return "the control's mean is 0, so there is no baseline to compare with"
    return "an arm has no variance (every unit the same, e.g. no conversions or all converted)"


def analyse(
    rows: list[VariantRow],
    *,
    metric_type: MetricType,
    method: Method,
    alpha: float,
    difference: Difference,
    tuning: float,
    weights: list[float],
) -> dict[str, Any]:
    """The whole `stats compare` document: settings, variants, one comparison per treatment, and SRM."""
    control = rows[0]
    comparisons: list[dict[str, Any]] = []
    for row in rows[1:]:
        effect = compute_effect(control.stats, row.stats, difference_type=difference.value)
        item: dict[str, Any] = {"variant": row.variant, "control": control.variant}
        if method is Method.BAYESIAN:
            b = bayesian_test_from_effect(effect, prior=GaussianPrior(), alpha=alpha)
            item.update(point_estimate=b.point_estimate, se=b.se, ci=list(b.ci), chance_to_win=b.chance_to_win,
                        risk={"keep_control": b.risk[0], "ship_treatment": b.risk[1]})
            if effect.error is not None:
                decision = NOT_ESTIMABLE
            elif b.chance_to_win >= 1 - alpha:
                decision = HIGHER
            elif b.chance_to_win <= alpha:
                decision = LOWER
            else:
                decision = INCONCLUSIVE
        else:
            r: FrequentistResult | SequentialResult
            if method is Method.FREQUENTIST:
                r = welch_test_from_effect(effect, alpha=alpha)
            else:
                r = sequential_test_from_effect(effect, alpha=alpha, tuning=tuning)
            item.update(point_estimate=r.point_estimate, se=r.se, ci=list(r.ci), p_value=r.p_value)
            if isinstance(r, FrequentistResult):
                item["dof"] = r.dof
            if effect.error is not None:
                decision = NOT_ESTIMABLE
            elif r.significant:
                decision = HIGHER if r.point_estimate > 0 else LOWER
            else:
                decision = INCONCLUSIVE
        item["decision"] = decision
        item["error"] = effect.error
        item["summary"] = _sentence(item, method=method, metric_type=metric_type, difference=difference,
                                    alpha=alpha, effect=effect)
        comparisons.append(item)
    counts = [float(r.stats.n) for r in rows]
    srm_result = compute_srm(counts, weights)
    return {
        "type": metric_type.value,
        "method": method.value,
        "difference": difference.value,
        "alpha": alpha,
        "tuning": tuning if method is Method.SEQUENTIAL else None,
        "prior": "flat" if method is Method.BAYESIAN else None,
        "control": control.variant,
        "variants": [_variant_data(r) for r in rows],
        "comparisons": comparisons,
        "srm": srm_data(counts, weights, srm_result),
    }


# -- numbers and sentences for people -------------------------------------------------------------------


def _digits(scale: float) -> int:
    """Decimals that show two significant digits of ``scale`` (a standard error or a standard deviation)."""
    if not math.isfinite(scale) or scale <= 0:
        return 2
    return max(0, min(8, 1 - math.floor(math.log10(scale))))


def effect_text(
    value: float, *, metric_type: MetricType, difference: Difference, scale: float, signed: bool = True
) -> str:
    """`+5.00%` (relative), `+1.20 pp` (absolute, proportion) or `+0.2900` (absolute, mean), with two significant
    digits of ``scale`` (the standard error); ``signed=False`` drops the `+` (for losses)."""
    if not math.isfinite(value):
        return "+∞" if value == math.inf else "−∞" if value == -math.inf else DASH
    sign = ("+" if value > 0 and signed else "") if value >= 0 else "−"
    magnitude = abs(value)
    if difference is Difference.RELATIVE:
        return sign + percent(magnitude, max(2, _digits(100 * scale)))
    if metric_type is MetricType.PROPORTION:
        return f"{sign}{100 * magnitude:.{max(2, _digits(100 * scale))}f} pp"
    return f"{sign}{magnitude:,.{_digits(scale)}f}"


def risk_text(item: dict[str, Any], which: str, *, metric_type: MetricType, difference: Difference) -> str:
    """An expected loss, unsigned, with digits for the smaller of the loss and the standard error (at most
    three more decimals than the standard error's)."""
    loss = item["risk"][which]
    scale = max(min(item["se"], loss), item["se"] / 1000)
    return effect_text(loss, metric_type=metric_type, difference=difference, scale=scale, signed=False)


def _interval_text(item: dict[str, Any], *, metric_type: MetricType, difference: Difference) -> str:
    low, high = item["ci"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return DASH
    fmt = {"metric_type": metric_type, "difference": difference, "scale": item["se"]}
    return f"{effect_text(low, **fmt)} to {effect_text(high, **fmt)}"


def p_phrase(value: float) -> str:
    """`p = 0.0123` or `p < 0.0001`."""
    shown = p_value(value)
    return f"p < {shown[1:]}" if shown.startswith("<") else f"p = {shown}"


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


def _sentence(
    item: dict[str, Any],
    *,
    method: Method,
    metric_type: MetricType,
    difference: Difference,
    alpha: float,
    effect: EffectEstimate,
) -> str:
    b, a = item["variant"], item["control"]
    if item["decision"] == NOT_ESTIMABLE:
        return f"{b} vs {a}: not estimable: {_not_estimable(effect)}."
    shown = effect_text(item["point_estimate"], metric_type=metric_type, difference=difference, scale=item["se"])
    span = _interval_text(item, metric_type=metric_type, difference=difference)
    level = _level(alpha)
    if method is Method.FREQUENTIST:
        p = p_phrase(item["p_value"])
        if item["decision"] == INCONCLUSIVE:
            return (f"No significant difference between {b} and {a} at α = {alpha:g} ({p}); {shown}, "
                    f"{level} CI {span} includes 0. Valid for a single look at a sample size fixed in advance.")
        return (f"{b} is {item['decision']} than {a}: {shown} ({level} CI {span}), {p}, below α = {alpha:g}. "
                "Valid for a single look at a sample size fixed in advance.")
    if method is Method.SEQUENTIAL:
        if item["decision"] == INCONCLUSIVE:
            return (f"No decision yet for {b} vs {a}: {shown}, the {level} confidence sequence {span} includes 0; "
                    "keep collecting data (the interval stays valid however often you look).")
        return (f"{b} is {item['decision']} than {a}: {shown}, the {level} confidence sequence {span} excludes 0, "
                "so you can stop now (valid however often you looked).")
    win = percent(item["chance_to_win"])
    ship = risk_text(item, "ship_treatment", metric_type=metric_type, difference=difference)
    keep = risk_text(item, "keep_control", metric_type=metric_type, difference=difference)
    if item["decision"] == HIGHER:
        return (f"{b} is likely higher than {a}: chance to win {win} (≥ {percent(1 - alpha, 0)}), {shown}; "
                f"expected loss if you ship {b}: {ship}.")
    if item["decision"] == LOWER:
        return (f"{b} is likely lower than {a}: chance to win {win} (≤ {percent(alpha, 0)}), {shown}; "
                f"expected loss if you ship {b}: {ship}.")
    return (f"Inconclusive for {b} vs {a}: chance to win {win}, between {percent(alpha, 0)} and "
            f"{percent(1 - alpha, 0)}; expected loss if you ship {b}: {ship}, if you keep {a}: {keep}.")


def srm_sentence(data: dict[str, Any]) -> str:
    split = "/".join(f"{w:.3g}" for w in data["weights"])
    head = f"χ² = {data['chi_square']:.3f} on {data['dof']} df, {p_phrase(data['p_value'])} against weights {split}"
    if data["mismatch"]:
        return (f"Sample ratio mismatch: {head}, below {data['threshold']:g}. The split differs from the intended "
                "weights: assignment or tracking may be broken; do not trust the comparison until you know why.")
    return f"Sample ratio OK: {head} (flagged below p < {data['threshold']:g})."


_DECISION_STYLE = {HIGHER: "bold green", LOWER: "bold red", INCONCLUSIVE: "yellow", NOT_ESTIMABLE: "dim"}


def print_compare(doc: dict[str, Any]) -> None:
    metric_type, method = MetricType(doc["type"]), Method(doc["method"])
    difference, alpha = Difference(doc["difference"]), doc["alpha"]
    if method is Method.SEQUENTIAL:
        title = f"sequential test (always valid, N* = {doc['tuning']:,.0f})"
    else:
        title = "Welch t test (fixed horizon)" if method is Method.FREQUENTIST else "Bayesian (flat prior)"
    proportion = metric_type is MetricType.PROPORTION
    variants = Table(title=f"Variants ({metric_type.value} metric)", title_justify="left", title_style="bold")
    variants.add_column("Variant")
    for name in ("Units", "Conversions" if proportion else "Sum", "Rate" if proportion else "Mean"):
        variants.add_column(name, justify="right")
    if not proportion:
        variants.add_column("SD", justify="right")
    sds = [math.sqrt(max(v["variance"], 0.0)) for v in doc["variants"]]
    mean_digits = max(_digits(sd / math.sqrt(v["n"])) for sd, v in zip(sds, doc["variants"], strict=True))
    sd_digits = max(_digits(sd) for sd in sds)
    whole = all(float(v["sum"]).is_integer() for v in doc["variants"])
    for k, (v, sd) in enumerate(zip(doc["variants"], sds, strict=True)):
        label = f"{v['variant']} (control)" if k == 0 else v["variant"]
        cells = [f"{v['n']:,}", f"{v['sum']:,.{0 if whole else 2}f}"]
        if proportion:
            cells.append(percent(v["mean"], 2))
        else:
            cells += [f"{v['mean']:,.{mean_digits}f}", f"{sd:,.{sd_digits}f}"]
        variants.add_row(label, *cells)
    console.print(variants)
    console.print(f"[bold]{difference.value.capitalize()} effect vs {doc['control']}[/]: {title}", highlight=False)
    table = Table()
    table.add_column("Variant")
    table.add_column("Effect", justify="right")
    table.add_column(f"{_level(alpha)} {'credible interval' if method is Method.BAYESIAN else 'CI'}", justify="right")
    if method is Method.BAYESIAN:
        table.add_column("Chance to win", justify="right")
        table.add_column("Risk (ship)", justify="right")
    else:
        table.add_column("p", justify="right")
    table.add_column("Decision")
    for item in doc["comparisons"]:
        cells = [item["variant"],
                 effect_text(item["point_estimate"], metric_type=metric_type, difference=difference, scale=item["se"]),
                 _interval_text(item, metric_type=metric_type, difference=difference)]
        if method is Method.BAYESIAN:
            cells += [percent(item["chance_to_win"] if item["error"] is None else None),
                      risk_text(item, "ship_treatment", metric_type=metric_type, difference=difference)]
        else:
            cells.append(p_value(item["p_value"] if item["error"] is None else None))
        decision = item["decision"].replace("_", " ")
        table.add_row(*cells, Text(decision, style=_DECISION_STYLE[item["decision"]]))
    console.print(table)
    for item in doc["comparisons"]:
        console.print(item["summary"], highlight=False)
    style = "bold red" if doc["srm"]["mismatch"] else "green"
    console.print(Text(srm_sentence(doc["srm"]), style=style))


# -- commands --------------------------------------------------------------------------------------------


@stats.command("compare")
def compare(
    file: Annotated[Path, typer.Argument(help="CSV with a header variant,n,sum[,sum_squares]; first row: control.")],
    metric_type: Annotated[
        MetricType,
        typer.Option("--type", help="proportion (sum = converted units) or mean (needs a sum_squares column)."),
    ] = MetricType.PROPORTION,
    method: Annotated[
        Method,
        typer.Option("--method", help="frequentist (Welch t, one look), sequential (always valid) or bayesian."),
    ] = Method.FREQUENTIST,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level (Bayesian: 1 − the chance to win "
                                                         "needed to call a winner).")] = 0.05,
    difference: Annotated[
        Difference, typer.Option("--difference", help="relative (lift over the control) or absolute effect.")
    ] = Difference.RELATIVE,
    tuning: Annotated[
        float, typer.Option("--tuning", help="Sequential only: N*, the total units where the interval is tightest.")
    ] = DEFAULT_TUNING,
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare each treatment with the control from summary numbers, and check the sample ratio.

    One row per variant: variant,n,sum (proportion: sum is the number of units that converted) or
    variant,n,sum,sum_squares (mean: Σx and Σx² over the n units). The first row is the control.
    """
    check_alpha(alpha)
    if not (math.isfinite(tuning) and tuning > 0):
        fail(f"--tuning: expected a positive number of units, got {tuning}")
    rows = read_variants(file, metric_type)
    doc = analyse(rows, metric_type=metric_type, method=method, alpha=alpha, difference=difference, tuning=tuning,
                  weights=parse_weights(weights, len(rows)))
    if as_json:
        emit_json(doc)
        return
    print_compare(doc)


@stats.command("srm")
def srm(
    counts: Annotated[str, typer.Option("--counts", help="Units per variant, comma-separated, e.g. 5000,5100.")],
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sample ratio mismatch: Pearson's chi-square test of the counts against the weights (flagged at
    p < 0.001)."""
    values = parse_numbers(counts, "--counts", whole=True)
    if len(values) < 2:
        fail("--counts: give the units of at least two variants, e.g. --counts 5000,5100")
    if sum(values) <= 0:
        fail("--counts: no units at all")
    chosen = parse_weights(weights, len(values))
    data = srm_data(values, chosen, compute_srm(values, chosen, threshold=DEFAULT_SRM_THRESHOLD))
    if as_json:
        emit_json(data)
        return
    table = Table(title="Sample ratio", title_justify="left", title_style="bold")
    for name in ("Variant", "Units", "Expected", "Weight"):
        table.add_column(name, justify="right")
    for k, (count, expected, weight) in enumerate(zip(data["counts"], data["expected"], data["weights"],
                                                      strict=True)):
        table.add_row(str(k + 1), f"{count:,}", DASH if expected is None else f"{expected:,.1f}", f"{weight:.3g}")
    console.print(table)
    console.print(Text(srm_sentence(data), style="bold red" if data["mismatch"] else "green"))
