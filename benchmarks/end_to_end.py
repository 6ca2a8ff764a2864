"""Benchmark 3: the whole graph on the default world, in-process and from the CLI, by step.

Two runs, as an operator does it: the raw assets for the history's range of days, then everything
downstream (dbt build, sentiment, forecast model, forecast, safety stock). Step times come from Dagster's
own event log (STEP_START to STEP_SUCCESS/STEP_FAILURE); what is left of the run's wall time is Dagster's
overhead (run launch, step start-up and, with the CLI's multiprocess executor, each step's imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.extraction import HISTORY_START, Options, fresh_storage
from benchmarks.harness import Report
from benchmarks.simulator import RunningSimulator, simulator_process
from unified_assets.lib.storage import DATA_DIR_VAR, PlatformStorage

RAW_SELECTION = "key:raw/*"
DOWNSTREAM_SELECTION = "group:transform,group:ml"
# Work = time during which some step ran; overhead = the run's wall time outside every step (process
# launch, definitions import, step start-up), measured from outside the run.


def step_intervals(events: Iterable[Any]) -> dict[str, tuple[float, float]]:
    """(start, end) of each step, STEP_START to STEP_SUCCESS/STEP_FAILURE, from Dagster's event log."""
    started: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for entry in events:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            intervals[event.step_key] = (started[event.step_key], entry.timestamp)
    return intervals


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Seconds during which at least one step was working (steps overlap under the multiprocess
    executor, so their sum would overstate the work and hide the overhead)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def run_bounds(events: Iterable[Any]) -> float:
    """Seconds from the run's first event (RUN_STARTING/RUN_START) to its last (RUN_SUCCESS)."""
    stamps = [entry.timestamp for entry in events if entry.dagster_event is not None]
    return max(stamps) - min(stamps)


def simulator_variables(sim: RunningSimulator) -> dict[str, str]:
    """The connection settings that point the platform at the simulator as if it were the vendors'
    services."""
    variables = dict(line.partition("=")[::2] for line in sim.credentials.env_lines(sim.base_urls))
    variables["UNIFIED_ASSETS_ACCOUNTING_TOKEN_URL"] = sim.token_url
    return variables


def environment_for(
    sim: RunningSimulator, storage: PlatformStorage, dagster_home: Path
) -> dict[str, str]:
    """The environment of a Dagster process started from here (the CLI): the simulator's connection
    settings and the data folder, which the child's definitions bind their resources to."""
    return {
        **os.environ,
        DATA_DIR_VAR: str(storage.root),
        "DAGSTER_HOME": str(dagster_home),
        **simulator_variables(sim),
    }


def materialize_cli(env: dict[str, str], selection: str, partition_range: str | None) -> float:
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "unified_assets.definitions",
        "--select",
        selection,
    ]
    if partition_range:
        command += ["--partition-range", partition_range]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dagster asset materialize {selection} failed:\n{done.stderr[-3000:]}")
    return seconds


def latest_runs_events(dagster_home: Path, count: int) -> list[list[Any]]:
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with DagsterInstance.get() as instance:
            runs = list(reversed(instance.get_runs(limit=count)))
            return [list(instance.all_logs(run.run_id)) for run in runs]
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _record_run(report: Report, mode: str, label: str, wall: float, events: list[Any]) -> float:
    intervals = step_intervals(events)
    for step, (start, end) in intervals.items():
        report.add(f"{mode}.step.{step}", "s", end - start)
    work = busy_seconds(intervals.values())
    report.add(f"{mode}.{label}.wall_s", "s", wall)
    report.add(f"{mode}.{label}.steps_busy_s", "s", work)
    report.add(f"{mode}.{label}.run_events_span_s", "s", run_bounds(events))
    return work


def run_cli(options: Options, report: Report, sim: RunningSimulator) -> None:
    with fresh_storage(options.scratch) as storage, tempfile.TemporaryDirectory() as home:
        env = environment_for(sim, storage, Path(home))
        partitions = f"{HISTORY_START}...{options.last_day}"
        raw_wall = materialize_cli(env, RAW_SELECTION, partitions)
        down_wall = materialize_cli(env, DOWNSTREAM_SELECTION, None)
        raw_events, down_events = latest_runs_events(Path(home), 2)
        work = _record_run(report, "cli", "raw", raw_wall, raw_events)
        work += _record_run(report, "cli", "downstream", down_wall, down_events)
        total = raw_wall + down_wall
        report.add("cli.total_wall_s", "s", total)
        report.add("cli.overhead_s", "s", total - work)
        report.add("cli.overhead_share", "share", (total - work) / total)


def run_in_process(options: Options, report: Report, sim: RunningSimulator) -> None:
    from dagster import AssetSelection, DagsterInstance, materialize

    from benchmarks.extract import QUIET
    from unified_assets.definitions import defs

    # The checks go in too: `dagster asset materialize --select key:raw/*` runs them with their assets.
    assets = [*(defs.assets or []), *(defs.asset_checks or [])]
    with fresh_storage(options.scratch) as storage:
        resources = _resources_for(sim, storage)
        with DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            raw = materialize(
                assets,
                resources=resources,
                instance=instance,
                run_config=QUIET,
                selection=AssetSelection.groups("ingestion"),
                tags={
                    "dagster/asset_partition_range_start": HISTORY_START,
                    "dagster/asset_partition_range_end": options.last_day,
                },
            )
            raw_wall = time.perf_counter() - started
            started = time.perf_counter()
            down = materialize(
                assets,
                resources=resources,
                instance=instance,
                run_config=QUIET,
                selection=AssetSelection.groups("transform", "ml"),
            )
            down_wall = time.perf_counter() - started
            if not (raw.success and down.success):
                raise RuntimeError("in-process end-to-end run failed")
            work = _record_run(
                report, "in_process", "raw", raw_wall, list(instance.all_logs(raw.run_id))
            )
            work += _record_run(
                report, "in_process", "downstream", down_wall, list(instance.all_logs(down.run_id))
            )
        total = raw_wall + down_wall
        report.add("in_process.total_wall_s", "s", total)
        report.add("in_process.overhead_s", "s", total - work)
        report.add("in_process.overhead_share", "share", (total - work) / total)


def _resources_for(sim: RunningSimulator, storage: PlatformStorage) -> dict[str, Any]:
    """The definitions' resources (defs/resources.py) as the CLI's processes resolve them from their
    environment: `storage` and the simulator's connection settings."""
    from unified_assets.defs.alerts.sink import AlertSink
    from unified_assets.lib.dbt_project import dbt_cli_resource
    from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi

    env = simulator_variables(sim)
    return {
        "storage": storage,
        "accounting_api": _resolved(AccountingApi, env, storage),
        "purchasing_api": _resolved(PurchasingApi, env, storage),
        "support_api": _resolved(SupportApi, env, storage),
        "dbt": dbt_cli_resource(),
        "alert_sink": AlertSink(storage=storage),
    }


def _resolved(api: Any, variables: dict[str, str], storage: PlatformStorage) -> Any:
    """A resource configured with its variables' values, as `EnvVar` would resolve them in a run."""
    values = {field: variables[var] for field, var in api.ENV_VARS.items() if var in variables}
    return api(storage=storage, **values)


def import_seconds() -> float:
    """What every step process pays before its work: importing the definitions in a fresh Python."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import unified_assets.definitions"], check=True, capture_output=True
    )
    return time.perf_counter() - started


def run_end_to_end(options: Options) -> Report:
    report = Report("end_to_end")
    report.facts["window"] = f"{HISTORY_START}..{options.last_day}"
    report.facts["runs"] = [f"{RAW_SELECTION} for the range", DOWNSTREAM_SELECTION]
    with simulator_process(options.sim.at(options.clock_after_last_day)) as sim:
        for _ in range(options.repeat):
            report.add("import_definitions_s", "s", import_seconds())
            run_in_process(options, report, sim)
            run_cli(options, report, sim)
    return report
