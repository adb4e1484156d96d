"""Real data: keystep's sequential analysis replayed over the 78 ASOS experiments (tests/data).

    .venv/bin/python bench/asos.py                 # the summary in docs/experiments-statistics.md
    .venv/bin/python bench/asos.py --per-stream    # and one line per metric stream

The ASOS data set (Liu et al., NeurIPS 2021 Datasets and Benchmarks, CC BY 4.0; tests/data/README.md) gives,
for each (experiment, variant, metric) stream, the running totals at each time point: units, mean and
variance per arm. At every time point with both variances present, each arm becomes keystep's
``MeanStats(n, Σx, Σx²)`` (``Σx = n·mean``, ``Σx² = (n − 1)·variance + n·mean²``, so its sample variance is
the published one) and is analysed as a dashboard would on that day:

* the sequential test (``compute_sequential_test``, relative effect, two-sided, α = 0.05) with N* = 5,000
  (keystep's default) and with N* = the stream's final total units (tuned in hindsight: the best a team
  that knew its sample size in advance could do); a stream *stops* at the first time point whose confidence
  sequence excludes 0, with the decision given by the sign of the effect;
* the fixed-horizon Welch test (``compute_welch_test``, relative) at the stream's last complete time point:
  the answer of a team that waited until the end and looked once;
* naive peeking: the first time point at which that fixed-horizon test has p < 0.05.

Rows with an empty variance are skipped (and counted); a stream without any complete row is skipped.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from keystep.stats.effects import compute_effect
from keystep.stats.frequentist import welch_test_from_effect
from keystep.stats.sequential import DEFAULT_TUNING, sequential_test_from_effect
from keystep.stats.sufficient import MeanStats

DATA = Path(__file__).parents[1] / "tests" / "data" / "asos_digital_experiments_dataset.csv"
ALPHA = 0.05

NAIVE = "naive peeking"

StreamKey = tuple[str, str, str]


@dataclass(frozen=True)
class Point:
    time: float
    control: MeanStats
    treatment: MeanStats


def arm(count: str, mean: str, variance: str) -> MeanStats:
    n, m, v = int(count), float(mean), float(variance)
    return MeanStats(n, n * m, (n - 1) * v + n * m * m)


def load(path: Path) -> tuple[dict[StreamKey, list[Point]], int, int]:
    """The complete time points of every stream, the rows skipped for an empty variance, and all rows."""
    streams: dict[StreamKey, list[Point]] = defaultdict(list)
    skipped = rows = 0
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows += 1
            key = (r["experiment_id"], r["variant_id"], r["metric_id"])
            streams.setdefault(key, [])
            if not r["variance_c"].strip() or not r["variance_t"].strip():
                skipped += 1
                continue
            streams[key].append(Point(float(r["time_since_start"]), arm(r["count_c"], r["mean_c"], r["variance_c"]),
                                      arm(r["count_t"], r["mean_t"], r["variance_t"])))
    for points in streams.values():
        points.sort(key=lambda p: p.time)
    return dict(streams), skipped, rows


@dataclass(frozen=True)
class StreamResult:
    key: StreamKey
    looks: int
    unestimable_looks: int
    end_time: float
    final_sign: int  # fixed-horizon Welch test at the last complete point: +1/−1 significant, 0 not
    final_p: float
    stops: dict[str, tuple[float, int] | None]  # per tuning label: (time, sign) of the first rejection
    naive: tuple[float, int] | None


def sign(x: float) -> int:
    return 1 if x > 0 else -1


def analyse(key: StreamKey, points: list[Point], tunings: dict[str, float | None]) -> StreamResult:
    final_total = points[-1].control.n + points[-1].treatment.n
    stops: dict[str, tuple[float, int] | None] = dict.fromkeys(tunings)
    naive: tuple[float, int] | None = None
    unestimable = 0
    final_sign, final_p = 0, float("nan")
    for k, point in enumerate(points):
        effect = compute_effect(point.control, point.treatment, difference_type="relative")
        if effect.error is not None:
            unestimable += 1
            continue
        fixed = welch_test_from_effect(effect, alpha=ALPHA)
        if naive is None and fixed.significant:
            naive = (point.time, sign(fixed.point_estimate))
        if k == len(points) - 1:
            final_p = fixed.p_value
            final_sign = sign(fixed.point_estimate) if fixed.significant else 0
        for label, tuning in tunings.items():
            if stops[label] is None:
                seq = sequential_test_from_effect(effect, alpha=ALPHA, tuning=tuning or float(final_total))
                if seq.significant:
                    stops[label] = (point.time, sign(seq.point_estimate))
    return StreamResult(key, len(points), unestimable, points[-1].time, final_sign, final_p, stops, naive)


def quartiles(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.1f} ({q1:.1f}–{q3:.1f})"


def agreement(stop: tuple[float, int] | None, final_sign: int) -> str:
    if stop is None:
        return "not stopped, final significant" if final_sign else "not stopped, final not significant"
    if final_sign == 0:
        return "stopped, final not significant"
    return "stopped, same direction as final" if stop[1] == final_sign else "stopped, opposite direction to final"


CATEGORIES = (
    "stopped, same direction as final",
    "stopped, final not significant",
    "stopped, opposite direction to final",
    "not stopped, final significant",
    "not stopped, final not significant",
)


def report(results: list[StreamResult], labels: list[str]) -> None:
    used = len(results)
    finals = Counter(r.final_sign for r in results)
    print(f"fixed-horizon Welch test at the last complete time point (relative effect, α = {ALPHA}): "
          f"{finals[1] + finals[-1]} of {used} significant ({finals[1]} up, {finals[-1]} down)")
    columns = [*labels, NAIVE]
    width = 30
    print(f"\n  {'':<38}" + "".join(f"{c:>{width}}" for c in columns))
    stops_of = {label: [r.stops[label] for r in results] for label in labels}
    stops_of[columns[-1]] = [r.naive for r in results]
    rows: list[tuple[str, list[str]]] = []
    rows.append(("streams stopped", [f"{sum(s is not None for s in v)} of {used}" for v in stops_of.values()]))
    for category in CATEGORIES:
        rows.append((f"  {category}", [str(sum(agreement(s, r.final_sign) == category
                                                for s, r in zip(v, results, strict=True)))
                                        for v in stops_of.values()]))
    rows.append(("stop day, median (quartiles)",
                 [quartiles([s[0] for s in v if s is not None]) for v in stops_of.values()]))
    rows.append(("stop, % of the stream's duration", [
        quartiles([100 * s[0] / r.end_time for s, r in zip(v, results, strict=True) if s is not None])
        for v in stops_of.values()]))
    for name, cells in rows:
        print(f"  {name:<38}" + "".join(f"{c:>{width}}" for c in cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the ASOS CSV")
    parser.add_argument("--per-stream", action="store_true", help="also print one line per stream")
    args = parser.parse_args(argv)
    streams, skipped_rows, rows = load(args.data)
    tunings: dict[str, float | None] = {f"sequential N*={DEFAULT_TUNING:,.0f}": DEFAULT_TUNING,
                                        "sequential N*=final": None}
    complete = {k: v for k, v in streams.items() if v}
    empty = sorted(k for k, v in streams.items() if not v)
    experiments = {k[0] for k in streams}
    print(f"{args.data.name}: {rows:,} rows, {len(experiments)} experiments, {len(streams)} metric streams; "
          f"{skipped_rows} rows with an empty variance skipped; {len(empty)} streams have no complete row "
          f"({', '.join('/'.join(k) for k in empty[:5])}{', …' if len(empty) > 5 else ''}); "
          f"{len(complete)} streams analysed")
    results = [analyse(k, v, tunings) for k, v in sorted(complete.items())]
    looks = sum(r.looks for r in results)
    unestimable = sum(r.unestimable_looks for r in results)
    print(f"{looks:,} looks analysed ({unestimable} not estimable: an arm without variance); streams last "
          f"{quartiles([r.end_time for r in results])} days (median, quartiles) over "
          f"{quartiles([float(r.looks) for r in results])} looks")
    print(f"relative effect, two-sided, α = {ALPHA}; a stream stops at the first look whose test rejects: "
          f"sequential with N* = {DEFAULT_TUNING:,.0f} (keystep's default) or N* = the stream's final units "
          f"(hindsight), or {NAIVE} (the fixed-horizon Welch test at every look)\n")
    report(results, list(tunings))
    if args.per_stream:
        print("\nexperiment/variant/metric  looks  end  final(p, sign)  " + "  ".join(tunings) + "  naive")
        for r in results:
            cells = ["–" if s is None else f"{s[0]:g}{'+' if s[1] > 0 else '−'}" for s in r.stops.values()]
            naive = "–" if r.naive is None else f"{r.naive[0]:g}{'+' if r.naive[1] > 0 else '−'}"
            print(f"{'/'.join(r.key):<26}{r.looks:>6}{r.end_time:>6g}  {r.final_p:.2g} {r.final_sign:+d}  "
                  + "  ".join(cells) + f"  {naive}")


if __name__ == "__main__":
    main()
