"""`python -m benchmarks` (or `scripts/bench`): run the benchmarks, print a table, write JSON."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from benchmarks.harness import Report, machine, peak_rss_mb, table, write_json
from benchmarks.simulator import NO_RATE_LIMITS, SimSettings

DEFAULT_SCRATCH = Path("data") / "bench"


def _suites() -> dict[str, Callable]:
    """Imported on use: `--help` should not pay for Dagster."""
    from benchmarks.batch_anomalies import run_batch_anomalies
    from benchmarks.capacity import run_capacity
    from benchmarks.comparison import run_naive_comparison
    from benchmarks.dev_runs import run_dev_runs
    from benchmarks.end_to_end import run_end_to_end
    from benchmarks.extraction import run_extraction, run_incremental
    from benchmarks.first_hour import run_first_hour
    from benchmarks.forecast_accuracy import run_forecast_accuracy
    from benchmarks.instance_hour import run_instance_hour
    from benchmarks.scale import run_scale
    from benchmarks.steps import run_steps
    from benchmarks.versus_dlt import run_versus_dlt

    return {
        "extraction": run_extraction,
        "incremental": run_incremental,
        "naive": run_naive_comparison,
        "end_to_end": run_end_to_end,
        "scale": run_scale,
        "steps": run_steps,
        "dev_runs": run_dev_runs,
        "first_hour": run_first_hour,
        "instance_hour": run_instance_hour,
        "forecast_accuracy": run_forecast_accuracy,
        "batch_anomalies": run_batch_anomalies,
        "capacity": run_capacity,
        "versus_dlt": run_versus_dlt,
    }


SUITES = (
    "extraction",
    "incremental",
    "naive",
    "end_to_end",
    "scale",
    "steps",
    "dev_runs",
    "first_hour",
    "instance_hour",
    "forecast_accuracy",
    "batch_anomalies",
    "capacity",
    "versus_dlt",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SUITES,
        default=list(SUITES[:3]),
        help="which benchmarks (default: extraction incremental naive)",
    )
    parser.add_argument(
        "--world",
        choices=("demo", "benchmark"),
        default="demo",
        help="WorldConfig.demo or WorldConfig.benchmark (default demo)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="world scale (default 1)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="simulated latency of every page (default 100)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--last-day",
        default="2026-10-31",
        help="last day of history extracted (default 2026-10-31)",
    )
    parser.add_argument(
        "--rate-limits",
        default=NO_RATE_LIMITS,
        help=f"simulator rate limits; '' for the vendors' defaults (default {NO_RATE_LIMITS!r})",
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0, 3.0, 10.0],
        help="world scales of the scale benchmark (default 1 3 10)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("data") / "bench" / "results.json",
        help="where the figures are written (default data/bench/results.json)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=DEFAULT_SCRATCH,
        help="folder for each run's temporary data dir",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from benchmarks.extraction import HISTORY_START, Options

    if _last_day(parser, args.last_day) < date.fromisoformat(HISTORY_START):
        parser.error(
            f"--last-day {args.last_day} is before {HISTORY_START}, the first day every benchmark extracts"
        )

    sim = SimSettings(
        args.world, args.scale, page_latency_ms=args.latency_ms, rate_limits=args.rate_limits
    )
    options = Options(sim, args.repeat, args.scratch.resolve(), args.last_day)
    print(f"simulator: {sim.describe()}", flush=True)
    suites = _suites()
    reports: list[Report] = []
    seconds: dict[str, float] = {}
    for name in args.only:
        started = time.perf_counter()
        print(f"running {name} ...", flush=True)
        runner = suites[name]
        reports.append(runner(options, args.scales) if name == "scale" else runner(options))
        seconds[name] = round(time.perf_counter() - started, 1)
    print(table(reports))
    document = {
        "command": " ".join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "simulator": sim.describe(),
        "repeat": args.repeat,
        "benchmark_seconds": seconds,
        "peak_rss": peak_rss_mb(),
        "benchmarks": {report.name: report.as_json() for report in reports},
    }
    write_json(args.json, document)
    print(f"figures written to {args.json}")
    return 0


def _last_day(parser: argparse.ArgumentParser, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        parser.error(f"--last-day {text!r} is not a date (YYYY-MM-DD)")


if __name__ == "__main__":
    sys.exit(main())
