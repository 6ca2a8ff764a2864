"""Benchmark: how the local Dagster instance grows over the first hour of `dagster dev`.

The first hour's walk (`benchmarks/first_hour.py`: the Quick start's clicks, the sensors and the automation
left on), then `dagster dev` left running, untouched, until an hour after its start. Every five minutes the
instance folder (`$DAGSTER_HOME`) is measured: its size on disk, and what the automation's per-asset
evaluations (the table that grew fastest before `automation_history_retention`) and the ticks hold.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from benchmarks.dev_runs import summarise_runs
from benchmarks.dev_session import DevSession
from benchmarks.extraction import Options
from benchmarks.first_hour import Stopped, walk
from benchmarks.harness import Report

HOUR_S = 3600
SAMPLE_EVERY_S = 300
MB = 1024 * 1024


def folder_mb(folder: Path) -> float:
    """Bytes on disk under `folder` (as `du` counts them), in MB."""
    return sum(path.stat().st_blocks * 512 for path in _files(folder)) / MB


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                yield path
        except OSError:  # removed while walking: a step's log file rotated, a temp file
            continue


def schedule_tables(dagster_home: Path) -> dict[str, float]:
    """Rows and stored MB of the automation's evaluations, and rows of ticks, read-only from the
    instance's schedule storage (SQLite, where `dagster dev` keeps them)."""
    database = dagster_home / "schedules" / "schedules.db"
    if not database.exists():
        return {}
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        rows, stored = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(asset_evaluation_body)), 0)"
            " FROM asset_daemon_asset_evaluations"
        ).fetchone()
        (ticks,) = db.execute("SELECT COUNT(*) FROM job_ticks").fetchone()
    return {"evaluations": rows, "evaluations_mb": stored / MB, "ticks": ticks}


def sample(dev: DevSession) -> dict[str, float]:
    return {
        "minute": round((time.time() - dev.started_at) / 60, 1),
        "instance_mb": round(folder_mb(dev.dagster_home), 1),
        **{key: round(value, 1) for key, value in schedule_tables(dev.dagster_home).items()},
    }


def run_instance_hour(options: Options) -> Report:
    report = Report("instance_hour")
    report.facts["simulator"] = "embedded (no settings), real clock"
    samples: list[dict[str, float]] = []
    report.facts["samples"] = samples
    options.scratch.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=options.scratch, prefix="instance-hour-") as root,
        DevSession(Path(root), {}, webhooks=True) as dev,
    ):
        try:
            walk(report, dev)
        except (Stopped, RuntimeError) as stop:
            report.facts["stopped"] = str(stop)
            print(f"  stopped: {stop}", flush=True)
        next_sample = dev.started_at
        while True:
            now = time.time()
            if now >= next_sample:
                samples.append(sample(dev))
                print(f"  {samples[-1]}", flush=True)
                while next_sample <= now:  # slots the walk outlasted are not sampled late, thrice
                    next_sample += SAMPLE_EVERY_S
            if now - dev.started_at >= HOUR_S:
                break
            time.sleep(max(0.0, min(next_sample, dev.started_at + HOUR_S) - time.time()))
        samples.append(sample(dev))
        report.facts["runs"] = summarise_runs(dev.runs(), origin=dev.started_at)
    first = next((s for s in samples if s["minute"] >= 5), samples[0])
    last = samples[-1]
    report.add("instance_mb_at_60_min", "MB", last["instance_mb"])
    report.add("instance_mb_growth_5_to_60_min", "MB", last["instance_mb"] - first["instance_mb"])
    if "evaluations_mb" in last:
        report.add("automation_evaluations_mb_at_60_min", "MB", last["evaluations_mb"])
    half = next((s for s in samples if s["minute"] >= 30), None)
    if half is not None:
        report.add(
            "instance_mb_per_hour_last_30_min",
            "MB/h",
            (last["instance_mb"] - half["instance_mb"]) * 60 / (last["minute"] - half["minute"]),
        )
    return report
