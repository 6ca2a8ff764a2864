"""Benchmark: the small runs of issue 18 under `dagster dev`, from the launch to the run's success.

One `dagster dev` on a fresh instance and data folder, the simulator as its own process (as in the other
benchmarks: frozen at the midnight after the last day, `--latency-ms` per page). Every run is launched as
the UI launches it (launchPipelineExecution, or launchPartitionBackfill for a range of days) and timed
from the mutation to the run's end as the run records it, split into the phases its event log shows
(queued, run worker starting, execution):

- the **seed run** (`seeds/currency_rates`, one dbt step), `--repeat` times;
- a **two-day extraction** of the three sources with their checks, `--repeat` times, as one run with the
  range's tags (the Launchpad) and as a backfill of the range (what the partition dialog sends: the
  backfill daemon creates the run on its next loop, every 30 s);
- the **automation's rebuild for one new day**: the `automation` sensor is switched on, builds everything
  once (the first full build), then each repetition lands one day never landed before and times the
  automation's run of the dbt models from the extraction's success to its own.

Every other sensor and schedule is switched off once the code location has loaded (the new-data sensor's
first tick would land the last day beside the measured runs), and the automation until its figure: the
runs measured are the only ones running. Per-step overhead is read from the event log as in `steps.py`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.dev_session import AUTOMATION_TAG, DevSession, event_kinds, has_tag, run_phases
from benchmarks.end_to_end import busy_seconds, simulator_variables, step_intervals
from benchmarks.extraction import Options
from benchmarks.harness import Report
from benchmarks.simulator import simulator_process
from benchmarks.steps import step_overheads

SEED = ["seeds", "currency_rates"]
RAW_KEYS = [["raw", "invoices"], ["raw", "purchase_orders"], ["raw", "support_tickets"]]
DBT_PREFIXES = ("staging", "intermediate", "marts", "seeds")
AUTOMATION = "automation"
AUTOMATION_SETTLE_S = 40  # longer than the automation sensor's 30 s interval


def range_tags(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def record_run(
    report: Report, label: str, run: dict, events: list[Any], launched_at: float | None
) -> dict[str, float]:
    """The run's figures under `label`: launch to end (the run's own end time), its own start to end, the
    phases and the per-step overhead from its event log."""
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"{label}: run {run['runId']} ended {run['status']}")
    phases = run_phases(event_kinds(events), launched_at)
    if launched_at is not None:
        report.add(f"{label}.launch_to_success_s", "s", run["endTime"] - launched_at)
    report.add(f"{label}.run_start_to_end_s", "s", run["endTime"] - run["startTime"])
    for phase in ("launch_s", "queued_s", "worker_start_s", "execution_s"):
        if phase in phases:
            report.add(f"{label}.{phase}", "s", phases[phase])
    intervals = step_intervals(events)
    report.add(f"{label}.steps_busy_s", "s", busy_seconds(intervals.values()))
    for step, (start, end) in intervals.items():
        report.add(f"{label}.step.{step}_s", "s", end - start)
    overheads = step_overheads(events)
    if overheads:
        report.add(f"{label}.step_overhead_median_s", "s", statistics.median(overheads.values()))
        for seconds in overheads.values():
            report.add("step_overhead_s", "s", seconds)
    return phases


def measure_run(
    report: Report, dev: DevSession, label: str, keys: list[list[str]], tags: dict[str, str]
) -> dict:
    launched_at = time.time()
    run_id = dev.launch_run(keys, tags)
    run = dev.wait_for_run(run_id, timeout_s=600, poll_s=0.25)
    report.add(f"{label}.polled_wall_s", "s", time.time() - launched_at)
    record_run(report, label, run, dev.run_events([run_id])[run_id], launched_at)
    dev.wait_until_quiet(settle_s=2)
    return run


def measure_backfill(report: Report, dev: DevSession, label: str, first: str, last: str) -> None:
    launched_at = time.time()
    backfill_id = dev.launch_backfill(RAW_KEYS, first, last)
    run = dev.wait_for_backfill_run(backfill_id, timeout_s=600)
    events = dev.run_events([run["runId"]])[run["runId"]]
    report.add(f"{label}.backfill_to_run_created_s", "s", run["creationTime"] - launched_at)
    record_run(report, label, run, events, None)
    report.add(f"{label}.launch_to_success_s", "s", run["endTime"] - launched_at)
    dev.wait_until_quiet(settle_s=2)


def switch_off_everything_but_automation(dev: DevSession) -> list[str]:
    """Switch off every sensor and schedule that starts runs; the alert sensors only read."""
    stopped: list[str] = []
    for _ in range(
        5
    ):  # a stop can race the daemon's first write of the sensor's state: check again
        running = [
            instigator
            for instigator in dev.instigators()
            if instigator["status"] == "RUNNING" and "alerts" not in instigator["name"]
        ]
        if not running:
            return sorted(set(stopped))
        for instigator in running:
            dev.stop(instigator)
            stopped.append(instigator["name"])
        time.sleep(1)
    raise RuntimeError(f"still running after five stops: {[i['name'] for i in running]}")


def dbt_run(run: dict) -> bool:
    return any(key["path"][0] in DBT_PREFIXES for key in run["assetSelection"] or [])


def wait_for_automation_run(dev: DevSession, after: float, timeout_s: float) -> dict | None:
    """The automation's first run of dbt models created after `after` (epoch seconds), once ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        candidates = [
            run
            for run in dev.runs(limit=20)
            if has_tag(run, AUTOMATION_TAG, "true") and dbt_run(run) and run["creationTime"] > after
        ]
        if candidates:
            first = min(candidates, key=lambda run: run["creationTime"])
            return dev.wait_for_run(first["runId"], timeout_s=600, poll_s=0.25)
        time.sleep(0.5)
    return None


def summarise_runs(runs: list[dict], origin: float | None = None) -> list[dict]:
    """Each run, oldest first: status, seconds from its start to its end, assets, who started it, and with
    `origin` (epoch seconds) when it was created, started and ended after it."""

    def since(stamp: float | None) -> float | None:
        return None if stamp is None or origin is None else round(stamp - origin, 1)

    return [
        {
            "status": run["status"],
            "created_s": since(run["creationTime"]),
            "started_s": since(run["startTime"]),
            "ended_s": since(run["endTime"]),
            "seconds": (
                round(run["endTime"] - (run["startTime"] or run["creationTime"]), 1)
                if run["endTime"]
                else None
            ),
            "assets": len(run["assetSelection"] or []),
            "automation": has_tag(run, AUTOMATION_TAG, "true"),
            "sensor": next(
                (t["value"] for t in run["tags"] if t["key"] == "dagster/sensor_name"), None
            ),
        }
        for run in reversed(runs)
    ]


def measure_rebuilds(report: Report, dev: DevSession, days: list[str]) -> None:
    switched_on = time.time()
    dev.start_sensor(AUTOMATION)
    first_build = dev.wait_until_quiet(settle_s=AUTOMATION_SETTLE_S, timeout_s=1200)
    automated = [
        run
        for run in first_build
        if has_tag(run, AUTOMATION_TAG, "true") and run["creationTime"] >= switched_on
    ]
    report.facts["first_full_build"] = summarise_runs(automated, origin=switched_on)
    if automated:
        report.add(
            "first_full_build.sensor_on_to_last_success_s",
            "s",
            max(run["endTime"] for run in automated) - switched_on,
        )
    for day in days:
        raw = measure_run_without_settling(report, dev, "one_day_extraction", day)
        rebuild = wait_for_automation_run(dev, after=raw["endTime"], timeout_s=180)
        if rebuild is None:
            report.facts.setdefault("rebuild_missing", []).append(
                f"{day}: no automation run of the dbt models within 180 s of the extraction"
            )
            continue
        events = dev.run_events([rebuild["runId"]])[rebuild["runId"]]
        label = "new_day_rebuild"
        record_run(report, label, rebuild, events, None)
        report.add(f"{label}.raw_success_to_success_s", "s", rebuild["endTime"] - raw["endTime"])
        report.add(
            f"{label}.raw_success_to_run_created_s", "s", rebuild["creationTime"] - raw["endTime"]
        )
        report.add(
            f"{label}.created_to_start_s", "s", rebuild["startTime"] - rebuild["creationTime"]
        )
        report.add(f"{label}.assets", "count", len(rebuild["assetSelection"] or []))
        later = dev.wait_until_quiet(settle_s=AUTOMATION_SETTLE_S, timeout_s=1200)
        report.facts.setdefault("after_each_new_day", []).append(
            {
                "day": day,
                "runs": summarise_runs(
                    [run for run in later if run["creationTime"] >= raw["creationTime"]],
                    origin=raw["endTime"],
                ),
            }
        )


def measure_run_without_settling(report: Report, dev: DevSession, label: str, day: str) -> dict:
    """A run of one day of the three sources; the automation's reaction is not waited for here."""
    launched_at = time.time()
    run_id = dev.launch_run(RAW_KEYS, {"dagster/partition": day})
    run = dev.wait_for_run(run_id, timeout_s=600, poll_s=0.25)
    record_run(report, label, run, dev.run_events([run_id])[run_id], launched_at)
    return run


def run_dev_runs(options: Options) -> Report:
    report = Report("dev_runs")
    last = date.fromisoformat(options.last_day)
    first_of_two, last_of_two = str(last - timedelta(days=2)), str(last - timedelta(days=1))
    new_days = [str(last - timedelta(days=3 + i)) for i in range(options.repeat)]
    report.facts["seed_run"] = "/".join(SEED)
    report.facts["two_day_extraction"] = f"raw/* with their checks, {first_of_two}...{last_of_two}"
    report.facts["new_days"] = new_days
    report.facts["simulator"] = options.sim.at(options.clock_after_last_day).describe()
    options.scratch.mkdir(parents=True, exist_ok=True)
    with (
        simulator_process(options.sim.at(options.clock_after_last_day)) as sim,
        tempfile.TemporaryDirectory(dir=options.scratch, prefix="dev-runs-") as root,
        DevSession(Path(root), simulator_variables(sim)) as dev,
    ):
        report.add("code_location_load_s", "s", dev.wait_until_loaded())
        report.facts["switched_off"] = switch_off_everything_but_automation(dev)
        report.facts["runs_before_measuring"] = summarise_runs(
            dev.wait_until_quiet(settle_s=3), origin=dev.started_at
        )
        for _ in range(options.repeat):
            measure_run(report, dev, "seed_run", [SEED], {})
        for _ in range(options.repeat):
            measure_run(
                report,
                dev,
                "two_day_extraction",
                RAW_KEYS,
                range_tags(first_of_two, last_of_two),
            )
            measure_backfill(report, dev, "two_day_backfill", first_of_two, last_of_two)
        measure_rebuilds(report, dev, new_days)
    report.target(
        "seed_run.launch_to_success_s", 15, "seed run under dagster dev, launch to success"
    )
    report.target(
        "two_day_extraction.launch_to_success_s",
        20,
        "two-day extraction of the three sources with their checks, one run, launch to success",
    )
    report.target(
        "two_day_backfill.launch_to_success_s",
        20,
        "the same range launched as the partition dialog does (a backfill), launch to success",
    )
    if "new_day_rebuild.raw_success_to_success_s" in report.figures:
        report.target(
            "new_day_rebuild.raw_success_to_success_s",
            45,
            "the automation's dbt run for one new day, from the extraction's success to its own",
        )
    report.target("step_overhead_s", 0.5, "per-step overhead under dagster dev, median over steps")
    return report
