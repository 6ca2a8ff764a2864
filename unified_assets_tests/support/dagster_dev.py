"""`dagster dev` driven as a user drives it, for the end-to-end tests: the process, its GraphQL API, and
the waits that follow a backfill's progress."""

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
from datetime import date
from pathlib import Path

from saas_simulator.environment import SIM_CLOCK_VAR
from unified_assets.lib.storage import DATA_DIR_VAR
from unified_assets.settings import HISTORY_START_VAR, PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `dagster dev` with Ctrl-C's default restored, then exec'd in place (same process): started from a shell
# that ran the tests in the background without job control, it would inherit SIGINT ignored, and the
# Ctrl-C test's SIGINT would do nothing.
WITH_SIGINT_RESTORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class DagsterDev:
    """`dagster dev` as `scripts/dev` runs it, in a process group of its own, with the test's data folder,
    a frozen simulator clock, and `instance` (a dagster.yaml) in a DAGSTER_HOME of its own; `env` adds
    to the environment (what that instance reads); `workspace` names the code locations."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        frozen_at: str,
        history_start: date,
        instance: Path = PROJECT_ROOT / "deploy" / "dagster.yaml",
        env: dict[str, str] | None = None,
        workspace: Path = PROJECT_ROOT / "workspace.yaml",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "dagster-dev.log"
        self.history_log_path = tmp_path / "land-history.log"
        bin_dir = Path(sys.executable).parent
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")
        }
        self.env.update(
            {
                "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                DATA_DIR_VAR: str(self.data_dir),
                SIM_CLOCK_VAR: f"frozen:{frozen_at}",
                HISTORY_START_VAR: history_start.isoformat(),
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                **(env or {}),
            }
        )
        dagster_home = Path(self.env["DAGSTER_HOME"])
        dagster_home.mkdir()
        shutil.copy(instance, dagster_home / "dagster.yaml")
        # As scripts/dev runs it.
        self.command = [
            str(bin_dir / "dagster"),
            "dev",
            "-w",
            str(workspace),
            "--log-level",
            "warning",
        ]
        self.command += ["-h", "127.0.0.1", "-p", str(self.port)]

    def __enter__(self) -> DagsterDev:
        self.log = self.log_path.open("w")
        self.history_log = self.history_log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WITH_SIGINT_RESTORED, *self.command],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __exit__(self, *_exc) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # stopped already (the Ctrl-C test)
        self.log.close()
        self.history_log.close()

    def wait_until_serving(self, timeout_s: float) -> None:
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


def wait_for_backfill_run(dev: DagsterDev, backfill_id: str, timeout_s: float) -> dict:
    """The backfill's first run once it has ended (the backfill itself is marked done later)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backfill = dev.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        ended = [
            run for run in backfill["runs"] if run["status"] in ("SUCCESS", "FAILURE", "CANCELED")
        ]
        if ended:
            return ended[-1]
        time.sleep(2)
    raise AssertionError(
        f"backfill's run not ended after {timeout_s} s:\n{dev.log_path.read_text()}"
    )


def backfill_params(keys: list[list[str]], first: date, last: date, title: str) -> dict:
    """What the UI's *Materialize* dialog sends for a partition range of `keys`."""
    return {
        "partitionsByAssets": [
            {
                "assetKey": {"path": key},
                "partitions": {"range": {"start": str(first), "end": str(last)}},
            }
            for key in keys
        ],
        "title": title,
    }


def launch_backfill(dev: DagsterDev, params: dict) -> str:
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def launch_run(dev: DagsterDev, selector: dict, tags: list[dict[str, str]] | None = None) -> str:
    """A run of the job (or asset selection) `selector` names, launched as the UI launches one, with
    `tags` ({"key", "value"} pairs); its run id."""
    params = {"selector": selector, "mode": "default"}
    if tags:
        params["executionMetadata"] = {"tags": tags}
    launched = dev.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


SENSORS = """
query Sensors($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    __typename
    ... on Sensors { results { id name sensorState { status } } }
  }
}
"""

STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
  }
}
"""

RUNS_IN_FLIGHT = """
{
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    ... on Runs { results { runId status } }
  }
}
"""


def stop_sensors(dev: DagsterDev, location: str) -> list[str]:
    """Stop every running sensor (the automation's too) of code location `location`, as a user does in
    the UI's *Automation* page; the names stopped."""
    repo = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    found = dev.graphql(SENSORS, {"repo": repo})["sensorsOrError"]
    assert found["__typename"] == "Sensors", found
    stopped = []
    for sensor in found["results"]:
        if sensor["sensorState"]["status"] == "RUNNING":
            result = dev.graphql(STOP_SENSOR, {"id": sensor["id"]})["stopSensor"]
            assert result["__typename"] == "StopSensorMutationResult", result
            assert result["instigationState"]["status"] == "STOPPED", result
            stopped.append(sensor["name"])
    return stopped


def wait_until_no_run_in_flight(dev: DagsterDev, timeout_s: float) -> None:
    """Return once no run of the instance is queued or running. The wait follows the runs' statuses;
    the deadline only ends a hung test."""
    deadline = time.monotonic() + timeout_s
    while runs := dev.graphql(RUNS_IN_FLIGHT)["runsOrError"]["results"]:
        assert time.monotonic() < deadline, f"runs still in flight: {runs}"
        time.sleep(0.5)
