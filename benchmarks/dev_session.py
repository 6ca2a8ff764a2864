"""`dagster dev` as scripts/dev runs it, on a fresh instance and data folder, driven over GraphQL as the UI
drives it (the mutations its buttons send), with the run timings read back from the instance.

Modelled on the end-to-end test's session (unified_assets_tests/end_to_end/test_dagster_dev.py), which the
benchmarks do not import: a test module is not a library.
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
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from unified_assets.lib.storage import DATA_DIR_VAR
from unified_assets.settings import PROJECT_ROOT

LOCATION = "unified_assets.definitions"
REPOSITORY = "__repository__"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
AUTOMATION_TAG = "dagster/from_automation_condition"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dev_environment(data_dir: Path, dagster_home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """What scripts/dev gives `dagster dev`: the venv's bin on PATH (dagster-dbt finds dbt there), the
    instance and data folders, and nothing of the caller's UNIFIED_ASSETS_* settings except `extra`. The
    project root goes first on PYTHONPATH so a checkout other than the one installed editable is the one
    that runs (the code server, the daemon and every run worker inherit it)."""
    bin_dir = Path(sys.executable).parent
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")}
    env.update(
        {
            "DAGSTER_HOME": str(dagster_home),
            DATA_DIR_VAR: str(data_dir),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            **extra,
        }
    )
    return env


class DevSession:
    """One `dagster dev` (webserver, daemon, code server) in its own process group, with the webhook
    receiver beside it when asked (scripts/dev starts both)."""

    def __init__(self, root: Path, extra_env: Mapping[str, str], *, webhooks: bool = False):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # As scripts/dev lays them out: the instance inside the data folder (so that folder exists from the
        # start; the platform expects it to).
        self.data_dir = root / "data"
        self.dagster_home = self.data_dir / "dagster_home"
        self.log_path = root / "dagster-dev.log"
        self.webhooks = webhooks
        extra = dict(extra_env)
        if webhooks:
            extra.setdefault("UNIFIED_ASSETS_WEBHOOK_PORT", str(free_port()))
        self.env = dev_environment(self.data_dir, self.dagster_home, extra)
        self.processes: list[subprocess.Popen] = []
        self.started_at = 0.0  # time.time() when `dagster dev` was started

    def __enter__(self) -> DevSession:
        self.dagster_home.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.log = self.log_path.open("w")
        bin_dir = Path(sys.executable).parent
        command = [str(bin_dir / "dagster"), "dev", "--workspace", "workspace.yaml"]
        command += ["-h", "127.0.0.1", "-p", str(self.port)]
        self.started_at = time.time()
        if self.webhooks:
            self.processes.append(self._start([sys.executable, "-m", "unified_assets.webhooks"]))
        self.processes.append(self._start(command))
        return self

    def _start(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __exit__(self, *_exc) -> None:
        for process in reversed(self.processes):  # each its own group, started here
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.log.close()

    @property
    def dagster(self) -> subprocess.Popen:
        return self.processes[-1]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    # --- GraphQL -------------------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        if "errors" in body:
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_until_loaded(self, timeout_s: float = 300) -> float:
        """Seconds from starting `dagster dev` until the webserver serves the code location's assets."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.dagster.poll() is not None:
                raise RuntimeError(f"dagster dev exited:\n{self.log_tail()}")
            try:
                if self.graphql("{ assetNodes { id } }")["assetNodes"]:
                    return time.time() - self.started_at
            except (OSError, RuntimeError):  # not listening yet, or the location still loading
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"dagster dev did not serve the assets in {timeout_s} s:\n{self.log_tail()}"
        )

    def asset_nodes(self) -> list[dict]:
        return self.graphql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]

    def launch_run(
        self, asset_keys: Iterable[list[str]], tags: Mapping[str, str] | None = None
    ) -> str:
        """What *Materialize* sends (launchPipelineExecution): one run of the assets and their checks."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": key} for key in asset_keys],
            },
            "mode": "default",
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        launched = self.graphql(LAUNCH_RUN, {"params": params})["launchPipelineExecution"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launch failed: {launched}")
        return launched["run"]["runId"]

    def launch_backfill(self, asset_keys: Iterable[list[str]], first: str, last: str) -> str:
        """What *Materialize* sends for a range of partitions (launchPartitionBackfill)."""
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": key}, "partitions": {"range": {"start": first, "end": last}}}
                for key in asset_keys
            ],
        }
        launched = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill failed to launch: {launched}")
        return launched["backfillId"]

    def run(self, run_id: str) -> dict:
        return self.graphql(RUN, {"id": run_id})["runOrError"]

    def runs(self, limit: int = 200) -> list[dict]:
        return self.graphql(RUNS, {"limit": limit})["runsOrError"]["results"]

    def wait_for_run(self, run_id: str, timeout_s: float = 600, poll_s: float = 0.5) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in TERMINAL:
                return run
            time.sleep(poll_s)
        raise RuntimeError(f"run {run_id} still going after {timeout_s} s:\n{self.log_tail()}")

    def wait_for_backfill_run(self, backfill_id: str, timeout_s: float = 600) -> dict:
        """The backfill's one run (single-run backfill policy), once it has ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            backfill = self.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            runs = backfill.get("runs") or []
            if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") and runs:
                return self.wait_for_run(runs[0]["id"], timeout_s)
            time.sleep(0.5)
        raise RuntimeError(f"backfill {backfill_id} still going after {timeout_s} s")

    def wait_until_quiet(self, settle_s: float, timeout_s: float = 900) -> list[dict]:
        """Every run, once none has been queued or running for `settle_s` (set it longer than the
        automation sensor's interval while that sensor is on)."""
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            runs = self.runs()
            if all(run["status"] in TERMINAL for run in runs):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return runs
            else:
                quiet_since = None
            time.sleep(1)
        raise RuntimeError(f"runs still going after {timeout_s} s")

    def instigators(self) -> list[dict]:
        """Every sensor and schedule with its state (name, kind, state id, status)."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        data = self.graphql(INSTIGATORS, {"selector": selector})
        found = [
            {"name": s["name"], "kind": "sensor", **s["sensorState"]}
            for s in data["sensorsOrError"]["results"]
        ]
        found += [
            {"name": s["name"], "kind": "schedule", **s["scheduleState"]}
            for s in data["schedulesOrError"]["results"]
        ]
        return found

    def stop(self, instigator: dict) -> None:
        """The toggle on the Automation page, off."""
        if instigator["kind"] == "sensor":
            self.graphql(STOP_SENSOR, {"id": instigator["id"]})
        else:
            self.graphql(STOP_SCHEDULE, {"id": instigator["id"]})

    def start_sensor(self, name: str) -> None:
        """The toggle on the Automation page, on."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        result = self.graphql(START_SENSOR, {"selector": {**selector, "sensorName": name}})
        if result["startSensor"]["__typename"] != "Sensor":
            raise RuntimeError(f"sensor {name} did not start: {result}")

    def latest_materialization(self, key: list[str]) -> dict | None:
        asset = self.graphql(LATEST_MATERIALIZATION, {"key": {"path": key}})["assetOrError"]
        materializations = asset.get("assetMaterializations") or []
        return materializations[0] if materializations else None

    def partition_keys(self, key: list[str]) -> list[str]:
        node = self.graphql(PARTITION_KEYS, {"key": {"path": key}})["assetNodeOrError"]
        return node["partitionKeysByDimension"][0]["partitionKeys"]

    # --- the instance's event log ---------------------------------------------------------------------

    def run_events(self, run_ids: Iterable[str]) -> dict[str, list[Any]]:
        """Each run's event log entries, read from the instance's storage (as steps.py reads the CLI's)."""
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return {run_id: list(instance.all_logs(run_id)) for run_id in run_ids}


def has_tag(run: dict, key: str, value: str | None = None) -> bool:
    return any(t["key"] == key and (value is None or t["value"] == value) for t in run["tags"])


LAUNCH_RUN = """
mutation LaunchPipelineExecution($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 10) { id status } }
  }
}
"""

RUN_FIELDS = (
    "runId status creationTime startTime endTime tags { key value } assetSelection { path }"
)

RUN = f"""
query Run($id: ID!) {{ runOrError(runId: $id) {{ ... on Run {{ {RUN_FIELDS} }} }} }}
"""

RUNS = f"""
query Runs($limit: Int) {{ runsOrError(limit: $limit) {{ ... on Runs {{ results {{ {RUN_FIELDS} }} }} }} }}
"""

INSTIGATORS = """
query Instigators($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { id status } } }
  }
  schedulesOrError(repositorySelector: $selector) {
    ... on Schedules { results { name scheduleState { id status } } }
  }
}
"""

STOP_SENSOR = """
mutation StopSensor($id: String!) { stopSensor(id: $id) { __typename } }
"""

STOP_SCHEDULE = """
mutation StopSchedule($id: String!) { stopRunningSchedule(id: $id) { __typename } }
"""

START_SENSOR = """
mutation StartSensor($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename } }
"""

LATEST_MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { runId timestamp } }
  }
}
"""

PARTITION_KEYS = """
query Partitions($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionKeysByDimension { partitionKeys } }
  }
}
"""


# --- pure: a run's phases from its event log ---------------------------------------------------------


def event_kinds(entries: Iterable[Any]) -> list[tuple[str, float]]:
    """(event type, timestamp) of every Dagster event of a run, run events under their current names
    (the event log still writes PIPELINE_START for RUN_START, and so on)."""
    kinds = []
    for entry in entries:
        event = entry.dagster_event
        if event is not None:
            kinds.append((event.event_type_value.replace("PIPELINE_", "RUN_"), entry.timestamp))
    return kinds


def run_phases(events: Iterable[tuple[str, float]], launched_at: float | None = None) -> dict:
    """Where a run's time went, in seconds, from its (event type, timestamp) pairs:

    - `launch_s`: from the launch (`launched_at`, when given) to the run being queued (the mutation);
    - `queued_s`: queued until the run coordinator dequeued it (the daemon's loop);
    - `worker_start_s`: from dequeued (or STARTING) to RUN_START: the run worker's process starting and
      importing the code location;
    - `execution_s`: RUN_START to the run's end (SUCCESS, FAILURE or CANCELED);
    - `total_s`: from the launch (or the first event) to the run's end.

    A phase whose events are missing is left out."""
    first: dict[str, float] = {}
    for kind, stamp in events:
        first.setdefault(kind, stamp)
    end = next(
        (first[k] for k in ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED") if k in first), None
    )
    queued = first.get("RUN_ENQUEUED")
    dequeued = first.get("RUN_DEQUEUED", first.get("RUN_STARTING"))
    started = first.get("RUN_START")
    phases: dict[str, float] = {}
    if launched_at is not None and queued is not None:
        phases["launch_s"] = queued - launched_at
    if queued is not None and dequeued is not None:
        phases["queued_s"] = dequeued - queued
    if dequeued is not None and started is not None:
        phases["worker_start_s"] = started - dequeued
    if started is not None and end is not None:
        phases["execution_s"] = end - started
    origin = launched_at if launched_at is not None else min(first.values(), default=None)
    if origin is not None and end is not None:
        phases["total_s"] = end - origin
    return phases
