"""Pools and the run queue of the `cluster` instance (deploy/cluster/dagster.yaml, on Postgres) with real
runs: three runs submitted together through the queue and started by Dagster's own daemon overlap and
contend for the pools, yet no two steps of one pool ever hold it at once, and no more than two runs of a
backfill are in flight.

The pools' limits are set first, as deploying the instance does (docs/scale-out.md, *Instance*): left to
`default_limit`, two runs meeting a new pool at once both insert its row and one run fails (Dagster 1.13.27,
`SqlEventLogStorage.initialize_concurrency_limit_to_default` goes on in the transaction Postgres aborted);
without the step, two of three tries here failed a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support import pooled_runs
from unified_assets_tests.support.services import cluster_instance_home

RUNS = 3
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
SAFETY_NET_SECONDS = 300  # the wait follows the runs' statuses; this only ends a hung test


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_three_runs_submitted_together_overlap_but_never_share_a_pool_or_pass_the_tag_limit(
    tmp_path, monkeypatch, postgres_database, s3_server
):
    cluster_instance_home(tmp_path / "home", monkeypatch, postgres_database, s3_server)
    with DagsterInstance.get() as instance:
        for pool in pooled_runs.POOLS:  # what `dagster instance concurrency set <pool> 1` does
            instance.event_log_storage.set_concurrency_slots(pool, 1)
    location = ["-m", pooled_runs.__name__, "-d", str(PROJECT_ROOT)]
    env = {
        **os.environ,
        **postgres_database.libpq_environment(),
        "UNIFIED_ASSETS_PROFILE": "cluster",
        "UNIFIED_ASSETS_DATA_DIR": str(tmp_path / "scratch"),
        pooled_runs.RECORDS_VAR: str(tmp_path / "records"),
    }
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", *location],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("w"),
        start_new_session=True,
    )
    try:
        submit = [sys.executable, "-m", "dagster", "job", "launch", *location, "-j", "pooled_run"]
        tags = ["--tags", json.dumps({"dagster/backfill": "pools-test"})]
        launches = [subprocess.Popen([*submit, *tags], env=env, cwd=tmp_path) for _ in range(RUNS)]
        assert all(launch.wait(timeout=120) == 0 for launch in launches)
        with DagsterInstance.get() as instance:
            records = wait_until_finished(instance, daemon, tmp_path / "daemon.log")
            story = story_of_the_runs(instance, records)
    finally:  # the daemon and the code server it started, which outlives it otherwise
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)

    assert [r.dagster_run.status for r in records] == [DagsterRunStatus.SUCCESS] * RUNS, story
    runs = [(r.start_time, r.end_time) for r in records]
    assert most_at_once(runs) == 2, "two runs at once, never three (dagster/backfill: limit 2)"

    held = [json.loads(path.read_text()) for path in (tmp_path / "records").glob("*.json")]
    assert len(held) == RUNS * len(pooled_runs.POOLS)
    for pool in pooled_runs.POOLS:
        spans = [(h["from"], h["to"]) for h in held if h["pool"] == pool]
        clashes = [pair for pair in combinations(spans, 2) if overlap(*pair)]
        assert not clashes, f"two steps held {pool} at once"
    # The runs met (the first step of each waits for another), so each pool was contended: some holder
    # saw another run's step waiting for its pool. (Whether steps of different pools overlapped in time
    # depends on how fast step processes start, so it is not asserted.)
    assert any(h["other_runs_waiting"] for h in held), "no step of a pool ever waited for another"


def wait_until_finished(instance: DagsterInstance, daemon: subprocess.Popen, log: Path) -> list:
    """The three runs' records once all have finished, oldest first."""
    deadline = time.monotonic() + SAFETY_NET_SECONDS
    while True:
        records = instance.get_run_records(
            RunsFilter(), order_by="create_timestamp", ascending=True
        )
        if len(records) == RUNS and all(r.dagster_run.status in FINISHED for r in records):
            return records
        assert daemon.poll() is None, f"the daemon exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, story_of_the_runs(instance, records)
        time.sleep(0.2)


def story_of_the_runs(instance: DagsterInstance, records: list) -> str:
    """The last events and errors of each run that did not succeed, and who holds or waits for each pool:
    what a hung or failed run was waiting for."""
    told = []
    for record in records:
        run = record.dagster_run
        if run.status != DagsterRunStatus.SUCCESS:
            events = instance.all_logs(run.run_id)[-15:]
            lines = [
                f"{e.step_key or ''} {e.dagster_event_type or ''} {e.message[:600]}" for e in events
            ]
            errors = [
                e.dagster_event.event_specific_data.error.to_string()[-3000:]
                for e in events
                if e.dagster_event
                and getattr(e.dagster_event.event_specific_data, "error", None) is not None
            ]
            told.append(f"run {run.run_id} {run.status}:\n" + "\n".join(lines + errors))
    for pool in pooled_runs.POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        told.append(f"{pool}: {info.claimed_slots} claimed, {info.pending_steps} pending")
    return "\n\n".join(told)
