"""The fault matrix: a run killed at its worst moments, out of disk, or served by a failing API, and what a
re-run makes of it.

API faults are served by the simulator to a run in this process; the lake it lands must be the golden one.
Every other case injects one fault into a real run in a child process (the raw assets materialized by
Dagster against the simulator, or the dbt models with dbt as the run's subprocess), then requires:
- at the fault: every published lake partition is whole (it reads, and holds exactly the rows the golden
  run wrote for that day), and every table in the warehouse is whole (exactly the golden table) or absent;
- after a fault-free re-run: the lake and every warehouse table identical to the golden run's, which saw
  no fault. Identical means the same multiset of rows, hashed order-independently; the extraction
  timestamp, which is the wall clock of each run, is left out, and doubles are compared to 6 decimals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    materialize,
)

from saas_simulator.faults import FaultPlan
from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.lake import Lake
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi
from unified_assets.lib.storage import DATA_DIR_VAR, PlatformStorage
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.resources import (
    SHORT_READ_TIMEOUT,
    dbt_resources,
    source_resources,
)
from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving
from unified_assets_tests.support.truth import TABLE_SYSTEM
from unified_assets_tests.support.warehouse import built_tables_hashes, rows_hash

pytestmark = pytest.mark.slow

RANGE = {
    "dagster/asset_partition_range_start": "2026-03-13",
    "dagster/asset_partition_range_end": FROZEN_AT.date().isoformat(),
}

# Every fault the simulator injects that leaves the data as it is (a vendor's schema drift and a record
# updated during the run change what there is to land; test_connectors.py holds those against the truth), on
# every source, at fixed requests of pages of 5, so each falls mid-pagination: four failures in a row on one
# page, a page served with duplicates, four more in a row. The access token expires on QuickBooks only (the
# others' keys do not expire). The vendors' own rate limits are off: a page of 5 is not what they are for.
API_FAULTS = (
    "rate_limit=at:2,server_error=at:3,connection_reset=at:4,read_timeout=at:5,"
    "duplicate_records=at:6+11+13,truncated_json=at:7,malformed_json=at:8,html_error_page=at:9,"
    "rate_limit_no_retry_after=at:10,expired_token@accounting=at:12,timeout=1"
)
NO_RATE_LIMITS = dict.fromkeys(("accounting", "purchasing", "support"))

# The child's faults, each patched into the real code in the child only: nothing in the package knows.
CHILD = r"""
import os, resource, signal, sys, types

from dagster import materialize

stage, fault = sys.argv[1:3]


def die(*_args, **_kwargs):
    os.killpg(0, signal.SIGKILL)  # the run and the dbt it started, as the OOM killer or a power cut would


def on_call(number, function):
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == number:
            die()
        return function(*args, **kwargs)

    return wrapper


import unified_assets.lake as lake
import unified_assets.places as places

if fault == "mid_fetch":  # the first page staged, the second fetched, nothing published
    lake.StagingFile.append = on_call(2, lake.StagingFile.append)
elif fault == "before_publishing":  # every page fetched and staged, no partition written
    lake.Lake.publish_days = on_call(1, lake.Lake.publish_days)
elif fault == "before_rename":  # the first day renamed into place; the second written and flushed, not
    os_with_a_fault = types.ModuleType("os")
    os_with_a_fault.__dict__.update(os.__dict__)
    os_with_a_fault.replace = on_call(2, os.replace)
    places.os = os_with_a_fault  # where a local folder publishes (places.publish_parquet)
elif fault == "disk_full":  # writes beyond 16 kB fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.RLIM_INFINITY))
elif fault == "mid_dbt_build":  # some models built and committed, others being written
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    stream = DbtCliInvocation.stream_raw_events

    def stream_until_killed(self):
        finished = 0
        for event in stream(self):
            finished += event.raw_event["info"]["name"] == "LogModelResult"
            if finished == int(os.environ["KILL_AFTER_MODELS"]):
                die()
            yield event

    DbtCliInvocation.stream_raw_events = stream_until_killed

# Configured as a deployment is, from this process's environment (the data folder included).
from unified_assets.lib.storage import PlatformStorage

storage = PlatformStorage.from_environment()
if stage == "extract":
    from unified_assets.defs.ingestion.assets import build_raw_asset, RAW_SOURCES
    from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi

    result = materialize(
        [build_raw_asset(source, retry_policy=None) for source in RAW_SOURCES],
        resources={  # small pages, so a kill can fall between two pages of one window
            "storage": storage,
            "accounting_api": AccountingApi.from_environment(storage, page_size=20),
            "purchasing_api": PurchasingApi.from_environment(storage, page_size=20),
            "support_api": SupportApi.from_environment(storage, page_size=20),
        },
        tags={"dagster/asset_partition_range_start": sys.argv[3],
              "dagster/asset_partition_range_end": sys.argv[4]},
        raise_on_error=False,
    )
else:
    from unified_assets.defs.transform.assets import dbt_models
    from unified_assets.lib.dbt_project import dbt_cli_resource

    resources = {"dbt": dbt_cli_resource(), "storage": storage}
    result = materialize([dbt_models], resources=resources, raise_on_error=False)
for event in result.all_events:
    if event.is_step_failure:
        print(f"STEP FAILED {event.step_key}: {event.step_failure_data.error.message}")
sys.exit(0 if result.success else 1)
"""


def lake_hashes(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Per published partition file: row count and an order-independent hash of its rows."""
    lake = Lake(data_dir / "lake")
    with duckdb.connect() as con:
        return {
            str(Path(path).relative_to(lake.url)): rows_hash(con, f"read_parquet('{path}')")
            for table in TABLE_SYSTEM
            for path in lake.partition_files(table)
        }


def warehouse_hashes(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Per table dbt built: row count and an order-independent hash of its rows."""
    path = data_dir / "warehouse.duckdb"
    if not path.exists():
        return {}
    # Read-write: a killed writer's WAL is replayed or dropped.
    with duckdb.connect(str(path)) as con:
        return built_tables_hashes(con)


def simulator_environment(server, storage: PlatformStorage) -> dict[str, str]:
    """The child's environment: the data folder and the simulator's URLs and credentials, set as a
    deployment sets the real services'."""
    resources = source_resources(server, storage)
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")}
    env[DATA_DIR_VAR] = str(storage.root)
    for api_class, api in (
        (AccountingApi, resources["accounting_api"]),
        (PurchasingApi, resources["purchasing_api"]),
        (SupportApi, resources["support_api"]),
    ):
        for field, variable in api_class.ENV_VARS.items():
            env[variable] = str(getattr(api, field))
    return env


def run_child(stage: str, fault: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    first, last = RANGE.values()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, stage, fault, first, last],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which `die` kills whole
    )
    stdout, stderr = child.communicate(timeout=300)
    wait_until_gone(process_group=child.pid)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def wait_for(condition, timeout_s: float = 30) -> None:
    """Poll `condition` until it holds; the deadline only ends a hung test."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def wait_until_gone(process_group: int, timeout_s: float = 30) -> None:
    """SIGKILL is delivered to a group's processes one by one: dbt can still hold the warehouse's lock
    for a moment after the run process is reaped. A process holds nothing once every thread of it is a
    zombie; its main thread alone is not enough (it shows "Z" while DuckDB's or dbt's threads are still
    exiting, and those hold the files and their locks until the last one ends)."""
    deadline = time.monotonic() + timeout_s
    while alive := [
        stat.parent.name
        for stat in Path("/proc").glob("[0-9]*/stat")
        if (fields := _stat_fields(stat))
        and fields[2] == str(process_group)
        and _any_thread_alive(stat.parent)
    ]:
        assert time.monotonic() < deadline, f"processes of the killed run still alive: {alive}"
        time.sleep(0.05)


def _any_thread_alive(process: Path) -> bool:
    return any(
        (fields := _stat_fields(thread)) and fields[0] not in ("Z", "X")
        for thread in process.glob("task/*/stat")
    )


def _stat_fields(stat: Path) -> list[str]:
    """state, ppid, pgrp, ... of /proc/<pid>/stat (after the command name, which may hold spaces)."""
    try:
        return stat.read_text().rpartition(")")[2].split()
    except OSError:  # the process ended while we looked
        return []


@pytest.fixture(scope="module")
def world(demo_config):
    return frozen_world(demo_config)


@pytest.fixture(scope="module")
def golden(tmp_path_factory, world) -> tuple[Path, dict, dict]:
    """The range landed and built with no fault: (data folder, lake hashes, warehouse hashes)."""
    data_dir = tmp_path_factory.mktemp("golden") / "data"
    storage = PlatformStorage(data_dir=str(data_dir))
    extract_fault_free(world, storage)
    assert materialize([dbt_models], resources=dbt_resources(storage)).success
    lake, warehouse = lake_hashes(data_dir), warehouse_hashes(data_dir)
    assert len(lake) == 3 * 3 and len(warehouse) > 10, (lake, warehouse)
    return data_dir, lake, warehouse


def extract_fault_free(world, storage: PlatformStorage) -> None:
    with serving(world) as server:
        resources = source_resources(server, storage)
        assert materialize(raw_assets, resources=resources, tags=RANGE).success


def assert_every_published_partition_is_whole(data_dir: Path, golden_lake: dict) -> dict:
    landed = lake_hashes(data_dir)
    assert {path: landed[path] for path in landed if landed[path] != golden_lake.get(path)} == {}
    return landed


def test_api_faults_on_every_source_land_the_golden_lake(golden, world, data_dir, storage):
    _, golden_lake, _ = golden
    plan = FaultPlan.parse(API_FAULTS)
    with serving(world, faults=plan, rate_limits=NO_RATE_LIMITS) as server:
        result = materialize(
            raw_assets,
            resources=source_resources(server, storage, page_size=5, **SHORT_READ_TIMEOUT),
            tags=RANGE,
        )
        injected = {system: set(stats["faults"]) for system, stats in server.stats.items()}
    assert result.success
    # Every failure on every source; duplicates where the paging can re-serve records (QuickBooks' and
    # Coupa's keyset walks always restart at the first position; test_connectors.py duplicates their
    # offset pages); the expired token on QuickBooks.
    failures = {spec.kind for spec in plan.specs} - {"duplicate_records", "expired_token"}
    assert all(failures <= kinds for kinds in injected.values()), injected
    assert "duplicate_records" in injected["support"] and "expired_token" in injected["accounting"]
    assert lake_hashes(data_dir) == golden_lake


@pytest.mark.parametrize("fault", ["mid_fetch", "before_publishing", "before_rename", "disk_full"])
def test_an_extraction_killed_or_out_of_disk_leaves_whole_partitions_and_a_rerun_converges(
    fault, golden, world, data_dir, storage
):
    _, golden_lake, _ = golden
    with serving(world) as server:
        child = run_child("extract", fault, simulator_environment(server, storage))

    if fault == "disk_full":
        # The run fails and says what and where: the asset, the file it could not write, and why.
        assert child.returncode == 1, child.stdout + child.stderr
        failures = [line for line in child.stdout.splitlines() if line.startswith("STEP FAILED")]
        assert failures, child.stdout
        for failure in failures:
            assert f"could not write {data_dir / 'lake'}" in failure, failure
            assert "File too large" in failure and "re-run the same partitions" in failure, failure
    else:
        assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    landed = assert_every_published_partition_is_whole(data_dir, golden_lake)
    if fault == "before_rename":
        assert len(landed) == 1, "the first day was renamed into place, the second never was"
    elif fault != "disk_full":
        assert landed == {}

    extract_fault_free(world, storage)
    assert lake_hashes(data_dir) == golden_lake
    assert not list((data_dir / "lake" / "_staging").glob("*.ndjson")), "the dead run's staging"


@pytest.mark.parametrize("models_before_kill", [3, 12])
def test_a_dbt_build_killed_mid_way_leaves_whole_tables_and_a_rerun_converges(
    models_before_kill, golden, data_dir, storage
):
    golden_dir, _, golden_warehouse = golden
    shutil.copytree(golden_dir / "lake", data_dir / "lake")
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")}
    env.update({DATA_DIR_VAR: str(storage.root), "KILL_AFTER_MODELS": str(models_before_kill)})

    child = run_child("build", "mid_dbt_build", env)

    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    built = warehouse_hashes(data_dir)
    assert built, "some models were committed before the kill"
    assert {table: built[table] for table in built if built[table] != golden_warehouse[table]} == {}
    assert len(built) < len(golden_warehouse)

    assert materialize([dbt_models], resources=dbt_resources(storage)).success
    assert warehouse_hashes(data_dir) == golden_warehouse


# ------------------------------------------------------------------ killed runs on one Dagster instance

# The runs an operator starts, from the command line, against a Dagster instance with the local
# profile's settings (deploy/dagster.yaml: pools of one slot, the local run launcher).
CLI = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
EXTRACT_RANGE = [
    *CLI,
    *("-m", "unified_assets.definitions", "--select", "group:ingestion"),
    *("--partition-range", "{}...{}".format(*RANGE.values())),
]
BUILD_MODELS = [*CLI, "-m", "unified_assets.definitions", "--select", "kind:dbt"]
CLI_RUN_DEADLINE_SECONDS = 600  # a whole run on a loaded 2-core machine; it ends much sooner
MATERIALIZED = DagsterEventType.ASSET_MATERIALIZATION


def start_cli_run(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A run in its own process group, its output in a file (a full pipe must not stall it)."""
    with log.open("a") as out:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_when(run: subprocess.Popen, moment, log: Path) -> None:
    """SIGKILL the run's whole process group (steps, forkserver, dbt) once `moment()` is true. The wait
    follows the run's progress; the deadline only ends a hung test."""
    deadline = time.monotonic() + CLI_RUN_DEADLINE_SECONDS
    while not moment():
        assert run.poll() is None, f"the run ended before the moment to kill it:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the moment never came:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    wait_until_gone(process_group=run.pid)


def run_to_the_end(command: list[str], env: dict[str, str], log: Path) -> None:
    run = start_cli_run(command, env, log)
    assert run.wait(timeout=CLI_RUN_DEADLINE_SECONDS) == 0, log.read_text()[-5000:]


def models_built(instance: DagsterInstance) -> int:
    """Models the run in progress has reported built (its materializations so far)."""
    started = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    return sum(
        len(instance.get_records_for_run(r.dagster_run.run_id, of_type=MATERIALIZED).records)
        for r in started
    )


def test_runs_killed_mid_extraction_and_mid_build_are_recovered_by_the_next_run_on_the_same_instance(
    golden, world, data_dir, storage, tmp_path
):
    """The operator's case: runs killed outright (their process groups, dbt included) twice during an
    extraction and once during a dbt build, each re-run started from the command line on the SAME
    instance with nobody cleaning up. Each re-run frees what the dead runs held (their pool slots) by
    itself and converges: the golden lake, then the golden warehouse."""
    _, golden_lake, golden_warehouse = golden
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    log = tmp_path / "runs.log"
    with (
        serving(world, page_latency_s=0.5) as server,
        DagsterInstance.local_temp(str(home)) as instance,
    ):
        env = {**simulator_environment(server, storage), "DAGSTER_HOME": str(home)}

        def served() -> int:
            return sum(stats["requests"] for stats in server.stats.values())

        for pages in (1, 3):  # the first page answered; three of the sources' pages answered
            # A killed run's requests still in the simulator's page latency are numbered when
            # answered: they must not count towards the next run's pages.
            wait_for(lambda: all(s["in_flight"] == 0 for s in server.stats.values()))
            before = served()
            run = start_cli_run(EXTRACT_RANGE, env, log)
            kill_when(run, lambda: served() >= before + pages, log)  # noqa: B023 (called at once)
            assert_every_published_partition_is_whole(data_dir, golden_lake)
        run_to_the_end(EXTRACT_RANGE, env, log)
        assert lake_hashes(data_dir) == golden_lake

        kill_when(start_cli_run(BUILD_MODELS, env, log), lambda: models_built(instance) >= 3, log)
        built = warehouse_hashes(data_dir)
        assert {t: built[t] for t in built if built[t] != golden_warehouse[t]} == {}
        run_to_the_end(BUILD_MODELS, env, log)
        assert warehouse_hashes(data_dir) == golden_warehouse

        statuses = [r.dagster_run.status for r in reversed(instance.get_run_records())]
        assert statuses == [DagsterRunStatus.FAILURE] * 2 + [DagsterRunStatus.SUCCESS] + [
            DagsterRunStatus.FAILURE,
            DagsterRunStatus.SUCCESS,
        ]
        assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert log.read_text().count("died without ending (its worker is gone): marked failed") == 3
