"""End to end, as a user runs it: `dagster dev`, the asset graph over GraphQL, a partition-range backfill.

This is the suite's one slow test (about a minute and a half): it starts the real webserver and daemon
from the project's workspace.yaml with no connection settings, so every source is the embedded simulator.
The simulator's clock is frozen so the landed files can be compared exactly with its ground truth.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path

import pytest

from unified_assets.settings import PROJECT_ROOT
from unified_assets.simulator import SimClock, World
from unified_assets.simulator.environment import simulator_world_config
from unified_assets_tests.truth import TABLE_SYSTEM, landed_versions, true_versions

pytestmark = pytest.mark.slow

FROZEN_AT = "2026-03-15T12:00:00Z"
FIRST_DAY, LAST_DAY = date(2026, 3, 1), date(2026, 3, 7)
RAW_KEYS = [["raw", table] for table in TABLE_SYSTEM]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "dagster-dev.log"
        bin_dir = Path(sys.executable).parent
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")
        }
        self.env.update(
            {
                "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                "UNIFIED_ASSETS_DATA_DIR": str(self.data_dir),
                "UNIFIED_ASSETS_SIM_CLOCK": f"frozen:{FROZEN_AT}",
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        dagster_home = Path(self.env["DAGSTER_HOME"])
        dagster_home.mkdir()
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        self.command = [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml"]
        self.command += ["-h", "127.0.0.1", "-p", str(self.port)]

    def __enter__(self) -> DagsterDev:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_serving(timeout_s=180)
        return self

    def __exit__(self, *_exc) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()

    def _wait_until_serving(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.log_path.read_text()}"
            try:
                nodes = self.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
                if nodes:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"dagster dev did not serve the assets:\n{self.log_path.read_text()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body["errors"]
        return body["data"]


ASSET_GRAPH = """
{ assetNodes { assetKey { path } groupName description kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    isPartitioned dependencyKeys { path } } }
"""

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

RUN_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""

ALL_RUNS = """
{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""

CHECK_RESULTS = """
{ assetNodes { assetKey { path } groupName
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status evaluation { severity description } } } } } } }
"""

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 10) { id status } }
  }
}
"""

RUN_EVENTS = """
query Events($id: ID!) {
  logsForRun(runId: $id, limit: 1000) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message timestamp stepKey }
      }
    }
  }
}
"""


def test_dagster_dev_serves_the_raw_assets_and_a_backfill_lands_the_ground_truth(tmp_path):
    with DagsterDev(tmp_path) as dev:
        nodes = {tuple(n["assetKey"]["path"]): n for n in dev.graphql(ASSET_GRAPH)["assetNodes"]}
        for key in RAW_KEYS:
            node = nodes[tuple(key)]
            assert node["groupName"] == "ingestion"
            assert node["description"]
            assert node["owners"] == [{"team": "data-platform"}]
            assert {"python", "parquet"} <= set(node["kinds"])
            assert node["isPartitioned"]
        staging = [node for key, node in nodes.items() if key[0] == "staging"]
        assert {node["assetKey"]["path"][1] for node in staging} == {
            "stg_accounting__invoices",
            "stg_accounting__invoice_lines",
            "stg_purchasing__purchase_orders",
            "stg_purchasing__purchase_order_lines",
            "stg_support__tickets",
            "stg_ml__ticket_sentiment",
        }
        for node in staging:
            assert node["groupName"] == "transform"
            assert {"dbt", "duckdb"} <= set(node["kinds"])
            assert node["description"]

        params = {
            "partitionsByAssets": [
                {
                    "assetKey": {"path": key},
                    "partitions": {"range": {"start": str(FIRST_DAY), "end": str(LAST_DAY)}},
                }
                for key in RAW_KEYS
            ],
            "title": "e2e backfill",
        }
        launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = wait_for_backfill(dev, launched["backfillId"], timeout_s=300)
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
        assert len(backfill["runs"]) == 1, "single-run backfill policy: one run for the range"

        events = dev.graphql(RUN_EVENTS, {"id": backfill["runs"][0]["id"]})["logsForRun"]["events"]
        assert_launched_together(events)

        transform = [list(key) for key, node in nodes.items() if node["groupName"] == "transform"]
        assert {"raw", "staging", "intermediate", "marts"} <= {key[0] for key in nodes}
        assert ["raw", "invoices"] in [k["path"] for k in nodes[STAGED_INVOICES]["dependencyKeys"]]
        run_id = launch_run(dev, transform)
        assert wait_for_run(dev, run_id, timeout_s=300) == "SUCCESS"
        runs = wait_until_quiet(dev, settle_s=40, timeout_s=300)
        assert_automation_ran_and_succeeded(runs)
        assert_every_check_green(dev)

    world = World(simulator_world_config(), clock=SimClock.parse(f"frozen:{FROZEN_AT}"))
    as_of = datetime.fromisoformat(FROZEN_AT)
    lake_dir = dev.data_dir / "lake"
    for table in TABLE_SYSTEM:
        expected = true_versions(world, table, FIRST_DAY, LAST_DAY, as_of)
        assert expected, f"the simulator should have {table} in the window"
        assert landed_versions(lake_dir, table, FIRST_DAY, LAST_DAY) == expected, table


STAGED_INVOICES = ("staging", "stg_accounting__invoices")


def launch_run(dev: DagsterDev, asset_keys: list[list[str]]) -> str:
    """What "Materialize selected" does in the UI: one run of the assets and their checks."""
    params = {
        "selector": {
            "repositoryLocationName": "unified_assets.definitions",
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": key} for key in asset_keys],
        },
        "mode": "default",
    }
    launched = dev.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for_run(dev: DagsterDev, run_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = dev.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise AssertionError(f"run still going after {timeout_s} s:\n{dev.log_path.read_text()}")


def assert_every_check_green(dev: DagsterDev) -> None:
    """As the asset graph shows it: every check of every ingestion and transform asset evaluated, and
    passed. (One landed week is too little history for the ml group; test_ml_assets runs it.)"""
    results = {}
    for node in dev.graphql(CHECK_RESULTS)["assetNodes"]:
        if node["groupName"] not in ("ingestion", "transform"):
            continue
        for check in node["assetChecksOrError"].get("checks", []):
            execution = check["executionForLatestMaterialization"]
            key = "/".join(node["assetKey"]["path"]) + ":" + check["name"]
            results[key] = execution["status"] if execution else "not evaluated"
    assert len(results) > 150, len(results)
    assert {key: status for key, status in results.items() if status != "SUCCEEDED"} == {}


def wait_until_quiet(dev: DagsterDev, settle_s: float, timeout_s: float) -> list[dict]:
    """Every run so far, once none has been queued or running for `settle_s` (longer than the automation
    sensor's interval, which may still be carrying the last change downstream; a schedule may also fire)."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        runs = dev.graphql(ALL_RUNS)["runsOrError"]["results"]
        if all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                return runs
        else:
            quiet_since = None
        time.sleep(3)
    raise AssertionError(
        f"runs still going after {timeout_s} s: {runs}\n{dev.log_path.read_text()}"
    )


def assert_automation_ran_and_succeeded(runs: list[dict]) -> None:
    """With nothing switched on by hand, the automation sensor carried the landed days downstream in runs
    of its own, and every run of the session, its and ours, succeeded."""
    automated = [
        run
        for run in runs
        if {"key": "dagster/from_automation_condition", "value": "true"} in run["tags"]
    ]
    assert automated, runs
    assert {run["runId"]: run["status"] for run in runs if run["status"] != "SUCCESS"} == {}


def wait_for_backfill(dev: DagsterDev, backfill_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backfill = dev.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            return backfill
        time.sleep(2)
    raise AssertionError(f"backfill still running after {timeout_s} s:\n{dev.log_path.read_text()}")


def assert_launched_together(events: list[dict]) -> None:
    """The three extracts run at the same time: the executor launched every step's process before
    any step finished (run one after another, each launch would wait for the previous success)."""
    launched = {
        e["stepKey"]: float(e["timestamp"])
        for e in events
        if e["__typename"] == "StepWorkerStartingEvent"
    }
    succeeded = {
        e["stepKey"]: float(e["timestamp"])
        for e in events
        if e["__typename"] == "ExecutionStepSuccessEvent"
    }
    extracts = {f"raw__{table}" for table in TABLE_SYSTEM}
    assert extracts <= set(launched) and extracts <= set(succeeded), (launched, succeeded)
    last_launch = max(launched[step] for step in extracts)
    assert last_launch < min(succeeded[step] for step in extracts), (launched, succeeded)
    assert "raw__support_tickets_no_pii_in_landed_text" in succeeded, "the PII check ran in the run"
