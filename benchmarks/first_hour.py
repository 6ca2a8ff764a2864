"""Benchmark: the first hour, as a newcomer follows the README's Quick start on a fresh data folder.

`dagster dev` as scripts/dev runs it (the webhook receiver beside it, the project's dagster.yaml, no
settings: every source is the embedded simulator on the real clock, history from its default first day),
then only what the Quick start says to click, each click sent as the mutation the UI sends, the sensors
and the automation left to do what they do:

1. start `scripts/dev`; the UI serves the asset graph;
2. select the raw assets' range of days, from the first day of history ("backfill the raw assets from the
   first day of history") to the newest, and *Materialize* (launchPartitionBackfill: one run);
3. wait, pressing nothing, until the automation has built the `transform` group on the landed days (the
   marts' weekly demand materialized by a run that started after the raw assets' materializations of the
   backfill; it may start before the backfill's run ends, while the run's check steps still run, so this
   step ends at whichever is later: the backfill's run or the mart);
4. "materialize the `ml` group" (launchPipelineExecution of the group's assets), which trains
   `ml/demand_forecast_model` and, given a promoted model, scores `ml/demand_forecast` in the same run.

Each step's time is taken when the newcomer could see it done (a run's or materialization's own end), so
the figures hold no reaction time. `scripts/bootstrap` (about 1 s when the environment exists) is not run:
it installs the checkout it runs in, and the harness must not touch the environment.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.dev_runs import RAW_KEYS, summarise_runs
from benchmarks.dev_session import DevSession, event_kinds, run_phases
from benchmarks.end_to_end import step_intervals
from benchmarks.extraction import Options
from benchmarks.harness import Report

WEEKLY_MART = ["marts", "sku_demand_weekly"]
FORECAST_MODEL = ["ml", "demand_forecast_model"]
FORECAST = ["ml", "demand_forecast"]
TARGET_S = 600


class Stopped(Exception):
    """The Quick start's steps did not reach a forecast; the message says where and why."""


def materialized_after(
    dev: DevSession, key: list[str], after: float, *, run_started_after: bool = False
) -> float | None:
    """When the asset's newest materialization happened (epoch seconds), if after `after`; with
    `run_started_after`, only if the run that made it also started after `after` (a build that began
    before the lake was complete does not count)."""
    latest = dev.latest_materialization(key)
    if latest is None:
        return None
    stamp = float(latest["timestamp"]) / 1000
    if stamp <= after:
        return None
    if run_started_after and (dev.run(latest["runId"])["startTime"] or 0) <= after:
        return None
    return stamp


def wait_materialized(
    dev: DevSession,
    key: list[str],
    after: float,
    timeout_s: float,
    *,
    run_started_after: bool = False,
) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stamp = materialized_after(dev, key, after, run_started_after=run_started_after)
        if stamp is not None:
            return stamp
        failed = [
            run
            for run in dev.runs(limit=30)
            if {"path": key} in (run["assetSelection"] or [])
            and run["status"] in ("FAILURE", "CANCELED")
            and (run["endTime"] or 0) > after
        ]
        if failed:
            raise Stopped(f"{'/'.join(key)}: run {failed[0]['runId']} ended {failed[0]['status']}")
        time.sleep(2)
    raise Stopped(f"{'/'.join(key)} not materialized within {timeout_s} s")


def step_seconds(dev: DevSession, run_id: str) -> dict[str, float]:
    events = dev.run_events([run_id])[run_id]
    return {step: round(end - start, 1) for step, (start, end) in step_intervals(events).items()}


def walk(report: Report, dev: DevSession) -> None:
    started = dev.started_at
    steps: list[dict] = []
    report.facts["steps"] = steps

    def done(step: str, at: float, since: float, **details) -> None:
        steps.append(
            {"step": step, "seconds": round(at - since, 1), "since_start_s": round(at - started, 1)}
            | details
        )
        report.add(f"{len(steps)}.{step}_s", "s", at - since)
        print(f"  {step}: {at - since:.1f} s (at {at - started:.1f} s)", flush=True)

    loaded = dev.wait_until_loaded(timeout_s=600)
    done("ui_serves_the_assets", started + loaded, started)

    keys = dev.partition_keys(RAW_KEYS[0])
    first, last = keys[0], keys[-1]
    clicked = time.time()
    backfill_id = dev.launch_backfill(RAW_KEYS, first, last)
    run = dev.wait_for_backfill_run(backfill_id, timeout_s=3600)
    if run["status"] != "SUCCESS":
        raise Stopped(f"the backfill's run {run['runId']} ended {run['status']}")
    phases = run_phases(event_kinds(dev.run_events([run["runId"]])[run["runId"]]))
    done(
        "backfill_history",
        run["endTime"],
        clicked,
        days=len(keys),
        range=f"{first}...{last}",
        run_phases={k: round(v, 1) for k, v in phases.items()},
        backfill_to_run_created_s=round(run["creationTime"] - clicked, 1),
        step_seconds=step_seconds(dev, run["runId"]),
    )

    # The raw steps' materializations come before the run's end (its check steps follow them), and the
    # automation may start the dbt build then: a mart built by a run that started after the history had
    # landed counts, whenever the backfill's run ended.
    landed = max(materialized_after(dev, key, after=clicked) or 0 for key in RAW_KEYS)
    built = wait_materialized(
        dev, WEEKLY_MART, after=landed, timeout_s=1800, run_started_after=True
    )
    done(
        "automation_builds_transform",
        max(built, run["endTime"]),
        run["endTime"],
        history_landed_at_s=round(landed - started, 1),
        mart_built_at_s=round(built - started, 1),
    )

    ml = [node["assetKey"]["path"] for node in dev.asset_nodes() if node["groupName"] == "ml"]
    clicked = time.time()
    run_id = dev.launch_run(ml)
    ml_run = dev.wait_for_run(run_id, timeout_s=1800)
    model = materialized_after(dev, FORECAST_MODEL, after=clicked)
    details = {"run_status": ml_run["status"], "step_seconds": step_seconds(dev, run_id)}
    if model is None:
        raise Stopped(f"the ml group's run {run_id} ended {ml_run['status']} without a model")
    done("materialize_ml_group_model_trained", model, clicked, **details)
    forecast = materialized_after(dev, FORECAST, after=clicked)
    if forecast is None:  # not in that run (its check stopped it): the automation's, given a model
        forecast = wait_materialized(dev, FORECAST, after=clicked, timeout_s=900)
    done("forecast_exists", forecast, model)
    report.add("start_to_forecast_s", "s", forecast - started)
    report.target("start_to_forecast_s", TARGET_S, "scripts/dev to a demand forecast")


def run_first_hour(options: Options) -> Report:
    report = Report("first_hour")
    report.facts["simulator"] = "embedded (no settings), real clock"
    options.scratch.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=options.scratch, prefix="first-hour-") as root,
        DevSession(Path(root), {}, webhooks=True) as dev,
    ):
        try:
            walk(report, dev)
        except (Stopped, RuntimeError) as stop:
            report.facts["stopped"] = str(stop)
            print(f"  stopped: {stop}", flush=True)
        report.facts["runs"] = summarise_runs(dev.runs(), origin=dev.started_at)
    return report
