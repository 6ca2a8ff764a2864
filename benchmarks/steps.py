"""Benchmark: what Dagster costs around each step and each small run, from the CLI, as runs launched from
the UI execute (a run worker process, the code location's executor).

- **Per-step overhead**: from the executor launching a step's process (STEP_WORKER_STARTING) to the step's
  first user code (STEP_START), read from Dagster's event log, for every step of a two-day extraction of the
  three sources (raw assets and their checks) and of a one-step run.
- **Small runs**: the wall time, from the command's start to its exit, of a two-day extraction and of a
  one-step run (the dbt seed of reference rates: five rows), each on a fresh instance and data folder.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.end_to_end import environment_for, latest_runs_events, materialize_cli
from benchmarks.extraction import Options, fresh_storage
from benchmarks.harness import Report
from benchmarks.simulator import simulator_process

RAW_SELECTION = "key:raw/*"
SEED_SELECTION = "key:seeds/currency_rates"


STEP_ENDS = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY")


def step_overheads(events: Iterable[Any]) -> dict[str, float]:
    """Seconds from each step's process launch (STEP_WORKER_STARTING) to its first user code (STEP_START).
    A step run in the run's own process has no launch event; its overhead is measured from what it
    waited for instead: the run's start (RUN_START) or the end of the step the process ran before it."""
    launched: dict[str, float] = {}
    in_process_free_since: float | None = None
    overheads: dict[str, float] = {}
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind in ("RUN_START", "PIPELINE_START"):  # the event log still writes the old name
            in_process_free_since = entry.timestamp
        elif kind == "STEP_WORKER_STARTING":
            launched[event.step_key] = entry.timestamp
        elif kind == "STEP_START":
            since = launched.get(event.step_key, in_process_free_since)
            if since is not None:
                overheads[event.step_key] = entry.timestamp - since
        elif kind in STEP_ENDS and event.step_key not in launched:
            in_process_free_since = entry.timestamp
    return overheads


def _record(report: Report, label: str, wall_s: float, events: list[Any]) -> None:
    overheads = step_overheads(events)
    report.add(f"{label}.wall_s", "s", wall_s)
    report.add(f"{label}.steps", "count", len(overheads))
    for seconds in overheads.values():
        report.add("step_overhead_s", "s", seconds)
    report.add(f"{label}.step_overhead_median_s", "s", statistics.median(overheads.values()))


def _measure_runs(
    report: Report, labels: list[str], options: Options, sim: Any, selection: str, days: str | None
) -> None:
    """One run per label, one after another on the same instance and data folder (a second run of the
    same selection is what a user sees from then on: dbt's parse state is kept per data folder)."""
    with fresh_storage(options.scratch) as storage, tempfile.TemporaryDirectory() as home:
        env = environment_for(sim, storage, Path(home))
        walls = [materialize_cli(env, selection, days) for _ in labels]
        runs = latest_runs_events(Path(home), len(labels))
    for label, wall_s, events in zip(labels, walls, runs, strict=True):
        _record(report, label, wall_s, events)


def run_steps(options: Options) -> Report:
    report = Report("steps")
    last = date.fromisoformat(options.last_day)
    two_days = f"{last - timedelta(days=1)}...{last}"
    report.facts["extraction"] = f"{RAW_SELECTION} for {two_days} (raw assets and their checks)"
    report.facts["one_step_run"] = f"{SEED_SELECTION}, twice on one data folder"
    with simulator_process(options.sim.at(options.clock_after_last_day)) as sim:
        for _ in range(options.repeat):
            _measure_runs(report, ["two_day_extraction"], options, sim, RAW_SELECTION, two_days)
            _measure_runs(
                report, ["seed_run_first", "seed_run"], options, sim, SEED_SELECTION, None
            )
    report.target("step_overhead_s", 0.5, "per-step overhead, median over every step")
    return report
