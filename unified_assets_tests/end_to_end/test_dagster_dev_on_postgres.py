"""End to end on the cluster profile's Dagster instance: `dagster dev` with deploy/cluster/dagster.yaml
(Postgres storage, the queued run coordinator and its limits, step logs in the bucket), as a team tries the
instance before deploying it. The asset graph is served from Postgres; a backfill of the three sources,
launched as the UI launches it, is queued, started by the daemon and succeeds with every check of its
run passing; the run, its events and its checks are rows in Postgres and its step logs objects in the
bucket.

Pools and the run queue with real runs, on the same session: three runs submitted together through the
queue and started by Dagster's daemon overlap and contend for the pools, yet no two steps of one pool ever
hold it at once, and no more than two runs of a backfill are in flight. They are runs of a second code
location (`support/pooled_runs.py`), whose steps hold the platform's pools the way its assets do and write
down when, and whose first step waits for a second run, so the runs are known to meet.

The pools' limits are set first, as deploying the instance does (docs/scale-out.md, *Instance*): left to
`default_limit`, two runs meeting a new pool at once both insert its row and one run fails (Dagster 1.13.27,
`SqlEventLogStorage.initialize_concurrency_limit_to_default` goes on in the transaction Postgres aborted);
without the step, two of three tries here failed a run.

Lighter than the SQLite session beside it (`test_dagster_dev.py`: the browser, the automation carrying the
data downstream, Ctrl-C), which exercises the same webserver and daemon: what differs here is where the
instance keeps its state. So the platform's sensors and automation are stopped here, as a user stops them
in the UI: their runs would hold the pools the pool test measures. The platform's own data stays in the
local profile (the cluster data services have tests of their own, `defs/test_cluster_chain.py` among
them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from unified_assets.definitions import defs
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support import pooled_runs
from unified_assets_tests.support.dagster_dev import (
    DagsterDev,
    backfill_params,
    launch_backfill,
    launch_run,
    stop_sensors,
    wait_for_backfill_run,
    wait_until_no_run_in_flight,
)
from unified_assets_tests.support.services import cluster_instance_environment
from unified_assets_tests.support.truth import TABLE_SYSTEM

pytestmark = pytest.mark.slow

FROZEN_AT = "2026-03-15T12:00:00Z"
HISTORY_START = FIRST_DAY = date(2026, 3, 12)
LAST_DAY = date(2026, 3, 14)
RAW_KEYS = [["raw", table] for table in TABLE_SYSTEM]
# Every pool a step of the definitions is in: the limits deploying sets once.
POOLS = sorted(
    {
        op.pool
        for op in defs.resolve_implicit_global_asset_job_def().all_node_defs
        if getattr(op, "pool", None)
    }
)

# What deploying the instance does once (docs/scale-out.md, *Instance*), with the instance's settings.
SET_POOL_LIMITS = """
import sys
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    for pool in sys.argv[1:]:
        instance.event_log_storage.set_concurrency_slots(pool, 1)
"""


@pytest.fixture(scope="module")
def database(postgres_server):
    return postgres_server.create_database()


@pytest.fixture(scope="module")
def logs_bucket(s3_server) -> str:
    return s3_server.create_bucket()


PLATFORM_LOCATION = "unified_assets.definitions"
POOLED_LOCATION = "pooled_runs"
POOLED_RUNS = 3
RUNS_TAGGED = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status startTime endTime } } }
}
"""
RUN_LOGS = """
query Logs($id: ID!) {
  logsForRun(runId: $id, limit: 1000) {
    ... on EventConnection { events { __typename ... on MessageEvent { message stepKey } } }
  }
}
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
POOLED_TAGS = [{"key": "dagster/backfill", "value": "pools-test"}]


def workspace_with_pooled_runs(folder: Path) -> Path:
    """The project's workspace and the pool test's code location beside it."""
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    for entry in workspace["load_from"]:
        entry["python_module"]["working_directory"] = str(PROJECT_ROOT)
    workspace["load_from"].append(
        {
            "python_module": {
                "module_name": pooled_runs.__name__,
                "location_name": POOLED_LOCATION,
                "working_directory": str(PROJECT_ROOT),
            }
        }
    )
    path = folder / "workspace.yaml"
    path.write_text(yaml.safe_dump(workspace))
    return path


@pytest.fixture(scope="module")
def pool_records(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pool_records")


@pytest.fixture(scope="module")
def dev(tmp_path_factory, database, s3_server, logs_bucket, pool_records) -> Iterator[DagsterDev]:
    folder = tmp_path_factory.mktemp("dagster_dev_on_postgres")
    session = DagsterDev(
        folder,
        frozen_at=FROZEN_AT,
        history_start=HISTORY_START,
        instance=PROJECT_ROOT / "deploy" / "cluster" / "dagster.yaml",
        env={
            **cluster_instance_environment(database, s3_server, logs_bucket),
            pooled_runs.RECORDS_VAR: str(pool_records),
        },
        workspace=workspace_with_pooled_runs(folder),
    )
    subprocess.run(
        [sys.executable, "-c", SET_POOL_LIMITS, *POOLS], env=session.env, check=True, timeout=120
    )
    with session:
        session.wait_until_serving(timeout_s=180)
        # The platform's sensors and automation would carry the backfill's data downstream (a dbt
        # run holding `warehouse` for minutes on a slow machine), which the pool test would wait behind.
        assert "automation" in stop_sensors(dev=session, location=PLATFORM_LOCATION)
        yield session


def test_dagster_dev_on_postgres_serves_the_asset_graph(dev, database):
    nodes = dev.graphql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    assert {"ingestion", "transform", "ml", "operations"} == {node["groupName"] for node in nodes}
    with database.connect() as con:
        tables = {row[0] for row in con.execute("select tablename from pg_tables").fetchall()}
    assert {"runs", "event_logs", "asset_check_executions", "concurrency_limits"} <= tables


def test_a_backfill_is_queued_run_and_checked_with_its_state_in_postgres_and_logs_in_the_bucket(
    dev, database, s3_server, logs_bucket
):
    params = backfill_params(RAW_KEYS, FIRST_DAY, LAST_DAY, title="e2e backfill on Postgres")
    backfill_id = launch_backfill(dev, params)
    run = wait_for_backfill_run(dev, backfill_id, timeout_s=300)
    assert run["status"] == "SUCCESS", f"{run}\n{dev.log_path.read_text()[-5000:]}"

    with database.connect() as con:
        [(status,)] = con.execute("select status from runs where run_id = %s", [run["id"]])
        executions = con.execute(
            "select check_name, execution_status from asset_check_executions where run_id = %s",
            [run["id"]],
        ).fetchall()
        enqueued = con.execute(
            "select count(*) from event_logs where run_id = %s and dagster_event_type = %s",
            [run["id"], "PIPELINE_ENQUEUED"],
        ).fetchone()[0]
    assert status == "SUCCESS"
    assert enqueued == 1, "the run went through the queue"
    # Dagster plans every check once per day of the range; a check evaluated per day fills each row, one
    # evaluated once for the whole range (the PII scan, the schema and drift checks) adds one SUCCEEDED
    # row and leaves the days' rows PLANNED. Postgres returns them in no fixed order.
    checks: dict[str, set[str]] = {}
    for name, status in executions:
        checks.setdefault(name, set()).add(status)
    assert "no_pii_in_landed_text" in checks, checks
    assert {name: s for name, s in checks.items() if "SUCCEEDED" not in s or "FAILED" in s} == {}

    listed = s3_server.client().list_objects_v2(Bucket=logs_bucket, Prefix="dagster/compute-logs/")
    logs = [item["Key"] for item in listed.get("Contents", [])]
    assert any(run["id"] in key for key in logs), logs


def test_three_runs_submitted_together_overlap_but_never_share_a_pool_or_pass_the_tag_limit(
    dev, pool_records
):
    assert set(pooled_runs.POOLS) <= set(POOLS), "every pool the runs hold has its limit set"
    wait_until_no_run_in_flight(dev, timeout_s=300)  # the runs meet each other, nobody else
    launched = [launch_pooled_run(dev) for _ in range(POOLED_RUNS)]
    runs = wait_until_finished(dev, launched)
    assert [run["status"] for run in runs] == ["SUCCESS"] * POOLED_RUNS, story_of_the_runs(
        dev, runs
    )
    spans = [(run["startTime"], run["endTime"]) for run in runs]
    assert most_at_once(spans) == 2, "two runs at once, never three (dagster/backfill: limit 2)"

    held = [json.loads(path.read_text()) for path in pool_records.glob("*.json")]
    assert len(held) == POOLED_RUNS * len(pooled_runs.POOLS)
    for pool in pooled_runs.POOLS:
        spans = [(h["from"], h["to"]) for h in held if h["pool"] == pool]
        clashes = [pair for pair in combinations(spans, 2) if overlap(*pair)]
        assert not clashes, f"two steps held {pool} at once"
    # The runs met (the first step of each waits for another), so each pool was contended: some holder
    # saw another run's step waiting for its pool. (Whether steps of different pools overlapped in time
    # depends on how fast step processes start, so it is not asserted.)
    assert any(h["other_runs_waiting"] for h in held), "no step of a pool ever waited for another"


def launch_pooled_run(dev: DagsterDev) -> str:
    """A run of the pool test's job, submitted as a backfill's runs are: through the queue, tagged."""
    selector = {
        "repositoryLocationName": POOLED_LOCATION,
        "repositoryName": "__repository__",
        "jobName": "pooled_run",
    }
    return launch_run(dev, selector, POOLED_TAGS)


def wait_until_finished(dev: DagsterDev, run_ids: list[str]) -> list[dict]:
    """The runs once every one has finished, by start time. The wait follows their statuses; the
    deadline only ends a hung test."""
    deadline = time.monotonic() + 300
    while True:
        runs = dev.graphql(RUNS_TAGGED, {"tags": POOLED_TAGS})["runsOrError"]["results"]
        if {run["runId"] for run in runs} == set(run_ids) and all(
            run["status"] in FINISHED for run in runs
        ):
            return sorted(runs, key=lambda run: run["startTime"])
        assert time.monotonic() < deadline, story_of_the_runs(dev, runs)
        time.sleep(0.5)


def story_of_the_runs(dev: DagsterDev, runs: list[dict]) -> str:
    """The last messages of each run that did not succeed, and the end of dagster dev's log: what a
    hung or failed run was waiting for."""
    told = []
    for run in runs:
        if run["status"] != "SUCCESS":
            events = dev.graphql(RUN_LOGS, {"id": run["runId"]})["logsForRun"]["events"]
            lines = [f"{e.get('stepKey') or ''} {e.get('message', '')[:600]}" for e in events[-15:]]
            told.append(f"run {run['runId']} {run['status']}:\n" + "\n".join(lines))
    told.append(dev.log_path.read_text()[-3000:])
    return "\n\n".join(told)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
