"""End to end, as a user runs it: `dagster dev`, the asset graph over GraphQL, a partition-range backfill,
the automation that carries it downstream, and the UI itself in a real browser.

These are the suite's slow tests, sharing one `dagster dev` session (about five and a half minutes): it starts
the real webserver and daemon from the project's workspace.yaml with no connection settings, so every
source is the embedded simulator. The simulator's clock is frozen so the landed files can be compared
exactly with its ground truth. The tests run in the order below; the last one requires every run of the
session, the browser's too, to have succeeded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from saas_simulator.clock import SimClock
from saas_simulator.environment import simulator_world_config
from saas_simulator.world import World
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.browser import (
    DagsterUi,
    materialize_from_asset_page,
    require_chromium,
    screenshots_dir,
    show_asset_graph,
    show_check_report,
    show_markdown_image,
)
from unified_assets_tests.support.dagster_dev import (
    BACKFILL_STATUS,
    DagsterDev,
    backfill_params,
    launch_backfill,
    launch_run,
    wait_for_backfill_run,
)
from unified_assets_tests.support.truth import TABLE_SYSTEM, landed_versions, true_versions

pytestmark = pytest.mark.slow

FROZEN_AT = "2026-03-15T12:00:00Z"
FIRST_DAY, LAST_DAY = date(2026, 3, 1), date(2026, 3, 7)
RAW_KEYS = [["raw", table] for table in TABLE_SYSTEM]
# The demand forecast needs at least 20 complete weeks in the marts. The days before the session's week are
# in the lake when the session starts (land_history).
HISTORY_START = date(2025, 9, 22)  # a Monday: 23 complete weeks before FIRST_DAY
GROUPS = ("ingestion", "transform", "ml", "operations")
FORECAST_MODEL, FORECAST = ["ml", "demand_forecast_model"], ["ml", "demand_forecast"]
TRAINING_SET = ["ml", "demand_training_set"]


ASSET_GRAPH = """
{ assetNodes { assetKey { path } groupName description kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    isPartitioned dependencyKeys { path } } }
"""

RUN_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""

ALL_RUNS = """
{ runsOrError { ... on Runs { results {
    runId status endTime tags { key value } assetSelection { path } } } } }
"""

CHECK_RESULTS = """
{ assetNodes { assetKey { path } groupName
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status evaluation { severity description } } } } } } }
"""


LATEST_MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label } } }
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


# The raw assets' partitions are fixed when unified_assets is imported, from the history start in the
# environment: the history is landed by a process of its own, with the session's settings (its data folder
# included, bound as the definitions bind it).
LAND_HISTORY = """
import sys
from dagster import materialize
from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi
from unified_assets.lib.storage import PlatformStorage

first, last = sys.argv[1:]
storage = PlatformStorage.from_environment()
result = materialize(
    raw_assets,
    resources={
        "storage": storage,
        "accounting_api": AccountingApi.from_environment(storage),
        "purchasing_api": PurchasingApi.from_environment(storage),
        "support_api": SupportApi.from_environment(storage),
    },
    tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    raise_on_error=False,
)
sys.exit(0 if result.success else 1)
"""


def land_history(dev: DagsterDev) -> subprocess.Popen:
    """The days before the session's week, landed into its lake by the same raw assets from the same
    simulated world, as a platform running since HISTORY_START holds them; the forecast in the session is
    trained on them. They are not materializations of the session's instance: a single backfill of months
    compares each day with the same weekday in earlier weeks of that backfill, and records move to the day
    they were last updated (most invoices are paid weeks after they are issued), so the row-count check
    reads the recent weeks as spikes. Started beside `dagster dev`, which takes longer to serve."""
    last = FIRST_DAY - timedelta(days=1)
    return subprocess.Popen(
        [sys.executable, "-c", LAND_HISTORY, HISTORY_START.isoformat(), last.isoformat()],
        cwd=PROJECT_ROOT,
        env=dev.env,
        stdout=dev.history_log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[DagsterDev]:
    session = DagsterDev(
        tmp_path_factory.mktemp("dagster_dev"), frozen_at=FROZEN_AT, history_start=HISTORY_START
    )
    with session:
        history = land_history(session)
        try:
            session.wait_until_serving(timeout_s=180)
            returncode = history.wait(timeout=300)
        finally:
            if history.poll() is None:
                history.kill()
                history.wait()
        assert returncode == 0, f"history not landed:\n{session.history_log_path.read_text()}"
        yield session


@pytest.fixture(scope="module")
def landed(dev: DagsterDev) -> dict:
    """The week backfilled as a user does it; returns the backfill (its id and its run) once the run has
    succeeded. Nothing more is pressed: the automation carries the landed days into the models."""
    params = backfill_params(RAW_KEYS, FIRST_DAY, LAST_DAY, title="e2e backfill")
    backfill_id = launch_backfill(dev, params)
    run = wait_for_backfill_run(dev, backfill_id, timeout_s=300)
    assert run["status"] == "SUCCESS", run
    return {"id": backfill_id, "run": run}


def test_dagster_dev_serves_the_asset_graph(dev):
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
    assert {"raw", "staging", "intermediate", "marts"} <= {key[0] for key in nodes}
    assert ["raw", "invoices"] in [k["path"] for k in nodes[STAGED_INVOICES]["dependencyKeys"]]
    assert {node["groupName"] for node in nodes.values()} == set(GROUPS)


def test_a_backfill_lands_the_ground_truth_in_one_run(dev, landed):
    """The week's backfill is one run whose extracts ran at the same time, and the lake (the history
    landed before the session, the week landed in it) holds exactly the simulator's records."""
    events = dev.graphql(RUN_EVENTS, {"id": landed["run"]["id"]})["logsForRun"]["events"]
    assert_launched_together(events)

    config = simulator_world_config().replace(history_start=HISTORY_START)
    world = World(config, clock=SimClock.parse(f"frozen:{FROZEN_AT}"))
    as_of = datetime.fromisoformat(FROZEN_AT)
    lake_dir = dev.data_dir / "lake"
    for table in TABLE_SYSTEM:
        expected = true_versions(world, table, HISTORY_START, LAST_DAY, as_of)
        assert expected, f"the simulator should have {table} in the window"
        assert landed_versions(lake_dir, table, HISTORY_START, LAST_DAY) == expected, table


def test_in_a_browser_the_ui_shows_every_group_materializes_and_reports(dev, landed, tmp_path):
    """Headless Chromium on the UI: the asset graph, a model trained by pressing *Materialize*, the forecast
    the automation then makes with it (its plot as the UI shows it), and a check report. The screenshots
    go to UNIFIED_ASSETS_SCREENSHOTS_DIR when set (the README's come from there), else to tmp_path."""
    require_chromium()
    shots = screenshots_dir(tmp_path / "screenshots")
    with DagsterUi(dev.url, shots, failures=tmp_path / "browser") as ui:
        # The automation copies the weekly history out of the warehouse once the marts are built; the
        # model trains on that copy.
        wait_for_materialization(dev, TRAINING_SET, timeout_s=600)
        run_id = materialize_from_asset_page(ui, FORECAST_MODEL, timeout_s=600)
        assert wait_for_run(dev, run_id, timeout_s=60) == "SUCCESS"
        assert latest_materialization(dev, FORECAST_MODEL)["runId"] == run_id

        # A promoted model is what the automation sensor waits for to rebuild the forecast.
        forecast = wait_for_materialization(dev, FORECAST, timeout_s=600)
        assert "forecast_plot" in {entry["label"] for entry in forecast["metadataEntries"]}
        show_markdown_image(ui, FORECAST, "forecast_plot", alt="forecast", shot="forecast-plot")

        show_check_report(ui, ["raw", "support_tickets"], "no_pii_in_landed_text")
        show_asset_graph(ui, GROUPS)


def test_every_run_and_every_check_is_green(dev, landed):
    """With nothing switched on by hand, the new-data sensor extracted what changed in the simulator's last
    day and the automation sensor carried the landed days downstream; once the session is quiet, every run
    in it (the backfill, the sensors', the browser's) succeeded, and every check of the ingestion and
    transform assets was evaluated and passed."""
    runs = wait_until_quiet(dev, timeout_s=600)
    assert_automation_ran_and_succeeded(runs)
    assert_every_check_green(dev)
    # The backfill daemon marks the backfill done at its next look (every 30 s, fixed in Dagster).
    backfill = wait_for_backfill(dev, landed["id"], timeout_s=120)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfill["runs"] == [landed["run"]], "single-run backfill policy: one run for the range"


def test_the_terminal_is_quiet(dev, landed):
    """Everything the session printed (`dagster dev` as scripts/dev runs it): no dbt output, nothing the
    steps logged or printed, no automation evaluations; those are in the UI. What remains is a few lines
    a run from the run worker itself (its start, its step processes, its end), which Dagster prints at the
    level its event log keeps: quieter would drop the steps' info logs from the UI too."""
    printed = [re.sub(r"\x1b\[[\d;]*m", "", line) for line in dev.log_path.read_text().splitlines()]
    dbt_output = [
        line for line in printed if re.search(r"\bOK created sql|\bPASS\b|\bSTART sql", line)
    ]
    step_events = [
        line
        for line in printed
        if re.search(
            r" - (STEP_OUTPUT|ASSET_MATERIALIZATION|ASSET_CHECK_EVALUATION|LOGS_CAPTURED) - ", line
        )
    ]
    daemon_info = [
        line for line in printed if re.search(r"dagster\.daemon\S* - (DEBUG|INFO) - ", line)
    ]
    shown = f"{len(printed)} lines:\n" + "\n".join(printed[:40])
    assert (dbt_output, step_events, daemon_info) == ([], [], []), shown


def test_ctrl_c_stops_dagster_dev_with_a_run_in_flight_and_the_run_says_so(dev, landed):
    """Last in this module: it stops the session. Ctrl-C sends SIGINT to the terminal's process group;
    `dagster dev`, its services and the run's processes (dbt's included) all exit, and the run in flight
    ends marked as interrupted, not left as started. (How long it takes: docs/benchmarks.md.)"""
    nodes = dev.graphql(ASSET_GRAPH)["assetNodes"]
    run_id = launch_assets_run(
        dev, [n["assetKey"]["path"] for n in nodes if n["groupName"] == "transform"]
    )
    wait_for_run_message(dev, run_id, "Running dbt command", timeout_s=300)
    os.killpg(dev.process.pid, signal.SIGINT)
    try:
        dev.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"dagster dev still running:\n{group_processes(dev.process.pid)}"
        ) from None
    wait_until_group_gone(dev.process.pid, timeout_s=60)
    status, message = run_end(dev, run_id)
    assert status in ("FAILURE", "CANCELED"), (status, message)
    assert "interrupted" in message.lower(), message


def wait_for_run_message(dev: DagsterDev, run_id: str, start: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = dev.graphql(RUN_EVENTS, {"id": run_id})["logsForRun"]["events"]
        if any((e.get("message") or "").startswith(start) for e in events):
            return
        time.sleep(1)
    raise AssertionError(f"run {run_id} logged no {start!r} in {timeout_s} s")


def wait_until_group_gone(pgid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    raise AssertionError(f"still running after `dagster dev` exited:\n{group_processes(pgid)}")


def group_processes(pgid: int) -> str:
    """The process group's processes, with what each waits on in the kernel."""
    listing = ["ps", "-o", "pid,ppid,stat,etime,wchan:20,args", "-g", str(pgid)]
    return subprocess.run(listing, capture_output=True, text=True).stdout


def run_end(dev: DagsterDev, run_id: str) -> tuple[str, str]:
    """The run's status and the message of its last run event, read from the stopped session's instance."""
    script = (
        "import sys\n"
        "from dagster import DagsterEventType as T, DagsterInstance\n"
        "with DagsterInstance.get() as instance:\n"
        "    run = instance.get_run_by_id(sys.argv[1])\n"
        "    ends = [e for e in instance.all_logs(run.run_id) if e.is_dagster_event\n"
        "            and e.dagster_event.event_type in (T.RUN_FAILURE, T.RUN_CANCELED)]\n"
        "    data = ends[-1].dagster_event.event_specific_data if ends else None\n"
        "    error = getattr(data, 'error', None)\n"
        "    print(run.status.value)\n"
        "    print((ends[-1].message if ends else 'no end event'), error.cls_name if error else '')\n"
    )
    read = subprocess.run(
        [sys.executable, "-c", script, run_id],
        env=dev.env,
        capture_output=True,
        text=True,
        check=True,
    )
    status, message = read.stdout.strip().split("\n", 1)
    return status, message


STAGED_INVOICES = ("staging", "stg_accounting__invoices")


def launch_assets_run(dev: DagsterDev, asset_keys: list[list[str]]) -> str:
    """What "Materialize selected" does in the UI: one run of the assets and their checks."""
    selector = {
        "repositoryLocationName": "unified_assets.definitions",
        "repositoryName": "__repository__",
        "jobName": "__ASSET_JOB",
        "assetSelection": [{"path": key} for key in asset_keys],
    }
    return launch_run(dev, selector)


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
    passed. (The ml group's one check is a model's promotion decision; test_ml_assets covers it.)"""
    results = {}
    for node in dev.graphql(CHECK_RESULTS)["assetNodes"]:
        if node["groupName"] not in ("ingestion", "transform"):
            continue
        for check in node["assetChecksOrError"].get("checks", []):
            execution = check["executionForLatestMaterialization"]
            if execution is None:
                execution = execution_in_latest_materialization_run(dev, node["assetKey"], check)
            key = "/".join(node["assetKey"]["path"]) + ":" + check["name"]
            results[key] = execution["status"] if execution else "not evaluated"
    assert len(results) > 150, len(results)
    assert {key: status for key, status in results.items() if status != "SUCCEEDED"} == {}


CHECK_EXECUTIONS = """
query Executions($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 5) { runId status }
}
"""


def execution_in_latest_materialization_run(dev: DagsterDev, asset_key: dict, check: dict):
    """The check's execution in the run of the asset's latest materialization, if any. Dagster's
    `executionForLatestMaterialization` follows the run that *planned* the check last: when a run planned
    before another executes after it (the automation's run queued behind ours on the warehouse pool), it
    shows the newest materialization's checks as not evaluated although they ran and passed with it."""
    latest = latest_materialization(dev, asset_key["path"])
    if latest is None:
        return None
    variables = {"key": {"path": asset_key["path"]}, "name": check["name"]}
    executions = dev.graphql(CHECK_EXECUTIONS, variables)["assetCheckExecutions"]
    return next((e for e in executions if e["runId"] == latest["runId"]), None)


def wait_until_quiet(dev: DagsterDev, timeout_s: float) -> list[dict]:
    """Every run so far, once none is queued or running and the automation sensor has looked again after
    the last one ended and asked for nothing: it may still be carrying the last change downstream."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = dev.graphql(ALL_RUNS)["runsOrError"]["results"]
        if all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
            last_end = max((run["endTime"] or 0 for run in runs), default=0)
            if automation_looked_since(dev, last_end):
                return runs
        time.sleep(3)
    raise AssertionError(
        f"runs still going after {timeout_s} s: {runs}\n{dev.log_path.read_text()}"
    )


AUTOMATION_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 3) { timestamp endTimestamp status runIds } } } } }
"""


def automation_looked_since(dev: DagsterDev, since: float) -> bool:
    """Whether a tick of the automation sensor that began after `since` has ended having started no run."""
    selector = {
        "repositoryLocationName": "unified_assets.definitions",
        "repositoryName": "__repository__",
        "sensorName": "automation",
    }
    sensor = dev.graphql(AUTOMATION_TICKS, {"selector": selector})["sensorOrError"]
    return any(
        tick["timestamp"] > since and tick["endTimestamp"] and not tick["runIds"]
        for tick in sensor["sensorState"]["ticks"]
        if tick["status"] in ("SUCCESS", "SKIPPED")
    )


def assert_automation_ran_and_succeeded(runs: list[dict]) -> None:
    """With nothing switched on by hand, the new-data sensor extracted the simulator's last day (its first
    look), the automation sensor carried the landed days downstream in runs of its own, and every run of the
    session, theirs and ours, succeeded."""
    automated = [
        run
        for run in runs
        if {"key": "dagster/from_automation_condition", "value": "true"} in run["tags"]
    ]
    assert automated, runs
    new_data = [
        run
        for run in runs
        if {"key": "dagster/sensor_name", "value": "new_source_data"} in run["tags"]
    ]
    assert new_data, f"the new-data sensor started no run: {runs}"
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
    assert "support_tickets_extract_checks" in succeeded, "the PII check ran in the run"


def latest_materialization(dev: DagsterDev, key: list[str]) -> dict | None:
    asset = dev.graphql(LATEST_MATERIALIZATION, {"key": {"path": key}})["assetOrError"]
    materializations = asset.get("assetMaterializations") or []
    return materializations[0] if materializations else None


def wait_for_materialization(dev: DagsterDev, key: list[str], timeout_s: float) -> dict:
    """The asset's first materialization in the session, by whichever run; a run of it that ends without
    one stops the wait."""
    deadline, runs = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        if materialization := latest_materialization(dev, key):
            return materialization
        runs = dev.graphql(ALL_RUNS)["runsOrError"]["results"]
        ended = [
            run
            for run in runs
            if {"path": key} in (run["assetSelection"] or [])
            and run["status"] in ("FAILURE", "CANCELED")
        ]
        assert not ended, f"{'/'.join(key)}: {ended}\n{dev.log_path.read_text()}"
        time.sleep(3)
    raise AssertionError(f"{'/'.join(key)} not materialized after {timeout_s} s; runs: {runs}")
