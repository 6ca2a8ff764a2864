"""Benchmarks 1 and 2: extraction, concurrent against sequential, and an incremental run after a full load."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.extract import (
    SLICED_PURCHASE_ORDERS,
    SourceRun,
    extract_all,
    extract_all_in_processes,
    extract_concurrently_from,
    source_processes,
    source_resources,
)
from benchmarks.harness import Report
from benchmarks.simulator import SimSettings, simulator_process
from unified_assets.lib.storage import PlatformStorage

HISTORY_START = "2026-01-01"


@dataclass(frozen=True)
class Options:
    """What every benchmark shares: the world, the simulator's latency, repetitions, scratch space."""

    sim: SimSettings
    repeat: int
    scratch: Path
    last_day: str = (
        "2026-10-31"  # the full load's last day; the simulator's clock is the next midnight
    )

    @property
    def clock_after_last_day(self) -> str:
        return f"frozen:{_next_day(self.last_day)}T00:00:00Z"


def _next_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


@contextmanager
def fresh_storage(scratch: Path) -> Iterator[PlatformStorage]:
    """The storage resource over a new, empty data folder for one run (the lake must not already hold
    the days), removed afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="run-") as directory:
        yield PlatformStorage(data_dir=directory)


def run_extraction(options: Options) -> Report:
    """Sequential and concurrent full loads side by side, alternating which goes first: in processes (one
    per source, as Dagster runs the raw assets: the target's figure) and in threads of one process (where
    Python's CPU work cannot overlap)."""
    report = Report("extraction")
    report.facts["simulator"] = options.sim.at(options.clock_after_last_day).describe()
    report.facts["window"] = f"{HISTORY_START}..{options.last_day}"
    with simulator_process(options.sim.at(options.clock_after_last_day)) as sim:
        with source_processes(sim, options.last_day) as pool:
            for rep in range(options.repeat):
                walls = {}
                for concurrent in _alternating(rep):
                    with fresh_storage(options.scratch) as storage:
                        walls[concurrent], runs = extract_all_in_processes(
                            pool, sim, storage.data_dir, HISTORY_START, options.last_day, concurrent
                        )
                    if not concurrent:
                        _add_source_rates(report, runs)
                report.add("sequential_wall_s", "s", walls[False])
                report.add("concurrent_wall_s", "s", walls[True])
                report.add("concurrent_over_sequential", "ratio", walls[True] / walls[False])
        for rep in range(options.repeat):
            walls = {}
            for concurrent in _alternating(rep):
                with fresh_storage(options.scratch) as storage:
                    resources = source_resources(sim, storage, SLICED_PURCHASE_ORDERS)
                    walls[concurrent], _ = extract_all(
                        resources, HISTORY_START, options.last_day, concurrent
                    )
            report.add("threads.sequential_wall_s", "s", walls[False])
            report.add("threads.concurrent_wall_s", "s", walls[True])
            report.add("threads.concurrent_over_sequential", "ratio", walls[True] / walls[False])
    report.target("concurrent_over_sequential", 0.40, "concurrent wall time <= 40% of sequential")
    return report


def _alternating(rep: int) -> tuple[bool, bool]:
    """Which goes first, sequential (False) or concurrent (True), alternating between repetitions."""
    return (False, True) if rep % 2 == 0 else (True, False)


def _add_source_rates(report: Report, runs: list[SourceRun]) -> None:
    for run in runs:
        report.add(f"{run.table}.seconds", "s", run.seconds)
        report.add(f"{run.table}.records_per_s", "records/s", run.records / run.seconds)
        report.add(f"{run.table}.pages_per_s", "pages/s", run.pages / run.seconds)
        report.facts[f"{run.table}.records"] = run.records
        report.facts[f"{run.table}.pages"] = run.pages


def run_incremental(options: Options, days: int = 2) -> Report:
    """A full load up to `days` before the last day, then the run that picks up those last days.

    The world's own activity in those days (new records and updates to old ones) is the change: with
    about 300 days of history, two days (1.2% on the demo world) is close to the issue's 1%. The
    fraction is reported, not assumed.
    """
    report = Report("incremental")
    last_full_day = _shift(options.last_day, -days)
    first_new_day = _shift(options.last_day, -days + 1)
    full_clock = f"frozen:{_next_day(last_full_day)}T00:00:00Z"
    report.facts["full_load_window"] = f"{HISTORY_START}..{last_full_day} at {full_clock}"
    report.facts["incremental_window"] = (
        f"{first_new_day}..{options.last_day} at {options.clock_after_last_day}"
    )
    for _ in range(options.repeat):
        with fresh_storage(options.scratch) as storage:
            with simulator_process(options.sim.at(full_clock)) as sim:
                full_wall, full_runs = extract_concurrently_from(
                    sim, storage, HISTORY_START, last_full_day
                )
            with simulator_process(options.sim.at(options.clock_after_last_day)) as sim:
                inc_wall, inc_runs = extract_concurrently_from(
                    sim, storage, first_new_day, options.last_day
                )
        full_records = sum(run.records for run in full_runs)
        inc_records = sum(run.records for run in inc_runs)
        report.add("full_load_wall_s", "s", full_wall)
        report.add("incremental_wall_s", "s", inc_wall)
        report.add("incremental_over_full", "ratio", inc_wall / full_wall)
        report.add("changed_records_share", "share", inc_records / full_records)
        report.facts["full_load_records"] = full_records
        report.facts["incremental_records"] = inc_records
    report.target("incremental_over_full", 0.10, "incremental extraction <= 10% of the full load's")
    return report


def _shift(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
