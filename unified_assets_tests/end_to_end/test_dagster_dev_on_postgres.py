"""End to end on the cluster profile's Dagster instance: `dagster dev` with deploy/cluster/dagster.yaml
(Postgres storage, the queued run coordinator and its limits, step logs in the bucket), as a team tries the
instance before deploying it. The asset graph is served from Postgres; a backfill of the three sources,
launched as the UI launches it, is queued, started by the daemon and succeeds with every check of its
run passing; the run, its events and its checks are rows in Postgres and its step logs objects in the
bucket.

Lighter than the SQLite session beside it (`test_dagster_dev.py`: the browser, the automation carrying the
data downstream, Ctrl-C), which exercises the same webserver and daemon: what differs here is where the
instance keeps its state. The platform's own data stays in the local profile (the cluster data services
have tests of their own, `defs/test_cluster_chain.py` among them).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import pytest

from unified_assets.definitions import defs
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.dagster_dev import (
    DagsterDev,
    backfill_params,
    launch_backfill,
    wait_for_backfill_run,
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


@pytest.fixture(scope="module")
def dev(tmp_path_factory, database, s3_server, logs_bucket) -> Iterator[DagsterDev]:
    session = DagsterDev(
        tmp_path_factory.mktemp("dagster_dev_on_postgres"),
        frozen_at=FROZEN_AT,
        history_start=HISTORY_START,
        instance=PROJECT_ROOT / "deploy" / "cluster" / "dagster.yaml",
        env=cluster_instance_environment(database, s3_server, logs_bucket),
    )
    subprocess.run(
        [sys.executable, "-c", SET_POOL_LIMITS, *POOLS], env=session.env, check=True, timeout=120
    )
    with session:
        session.wait_until_serving(timeout_s=180)
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
        checks = dict(
            con.execute(
                "select check_name, execution_status from asset_check_executions where run_id = %s",
                [run["id"]],
            ).fetchall()
        )
        enqueued = con.execute(
            "select count(*) from event_logs where run_id = %s and dagster_event_type = %s",
            [run["id"], "PIPELINE_ENQUEUED"],
        ).fetchone()[0]
    assert status == "SUCCESS"
    assert enqueued == 1, "the run went through the queue"
    assert "no_pii_in_landed_text" in checks, checks
    assert {name: s for name, s in checks.items() if s != "SUCCEEDED"} == {}

    listed = s3_server.client().list_objects_v2(Bucket=logs_bucket, Prefix="dagster/compute-logs/")
    logs = [item["Key"] for item in listed.get("Contents", [])]
    assert any(run["id"] in key for key in logs), logs
