"""A run whose worker is killed frees what it held, on the same instance, with nobody at hand
(unified_assets/lib/run_workers.py and the run monitoring settings of deploy/dagster.yaml)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from unified_assets.lib.run_workers import LocalRunLauncher, RunWorker, free_dead_runs
from unified_assets.settings import PROJECT_ROOT

# A pooled asset that says when it holds its slot, then runs until it is killed (or returns at once),
# executed as the platform's runs are (its executor).
HELD_ASSET = textwrap.dedent(
    """
    import os, pathlib, time
    from dagster import Definitions, asset
    from unified_assets.lib.executor import in_process_unless_steps_overlap

    @asset(pool="warehouse")
    def held() -> None:
        pathlib.Path(os.environ["HELD_MARKER"]).write_text(str(os.getpid()))
        while os.environ.get("HELD_FOREVER"):
            time.sleep(0.1)

    defs = Definitions(assets=[held], executor=in_process_unless_steps_overlap)
    """
)
STARTUP_DEADLINE_SECONDS = 180  # a CLI process importing Dagster on a loaded 2-core machine


def test_a_worker_is_alive_while_its_process_runs_and_it_started_before_the_run():
    this = psutil.Process()
    assert RunWorker(this.pid, run_started_at=time.time()).is_alive()
    # The same id, but a run that started before this process: the id was reused.
    assert not RunWorker(this.pid, run_started_at=this.create_time() - 60).is_alive()


def test_a_killed_worker_is_dead_whether_reaped_or_a_zombie():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = time.time()
    assert RunWorker(child.pid, started).is_alive()
    child.kill()
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:  # killed, not yet reaped
        assert time.monotonic() < deadline, "the killed child never became a zombie"
        time.sleep(0.05)
    assert not RunWorker(child.pid, started).is_alive()
    child.wait()
    assert not RunWorker(child.pid, started).is_alive()


@pytest.fixture
def local_instance(tmp_path, monkeypatch):
    """An instance with the local profile's settings, in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        yield instance


def materialize_held(tmp_path: Path, forever: bool) -> subprocess.Popen:
    """`dagster asset materialize` of the pooled asset, in its own process group."""
    definitions = tmp_path / "held.py"
    definitions.write_text(HELD_ASSET)
    env = {**os.environ, "HELD_MARKER": str(tmp_path / "holding")}
    env.pop("HELD_FOREVER", None)
    if forever:
        env["HELD_FOREVER"] = "1"
    command = ["asset", "materialize", "-f", str(definitions), "--select", "held"]
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", *command],
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_until_holding(process: subprocess.Popen, marker: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before holding its slot:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the run did not reach its pooled step")
        time.sleep(0.1)


def killed_while_holding(tmp_path: Path, marker: Path) -> subprocess.Popen:
    """A run of the pooled asset, killed (its whole process group) while its step holds the slot."""
    run = materialize_held(tmp_path, forever=True)
    wait_until_holding(run, marker)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return run


def test_the_local_instance_monitors_runs_with_a_launcher_that_checks_workers(local_instance):
    assert isinstance(local_instance.run_launcher, LocalRunLauncher)
    assert local_instance.run_launcher.supports_check_run_worker_health
    assert local_instance.run_monitoring_enabled
    assert local_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_a_killed_run_is_marked_failed_its_pool_freed_and_the_rerun_succeeds(
    local_instance, tmp_path
):
    """SIGKILL to the run's whole process group while its step holds the `warehouse` slot: the run
    stays STARTED holding the slot (a rerun would wait forever) until the worker check finds it dead;
    then the slot is free and the same materialization on the same instance succeeds."""
    marker = tmp_path / "holding"
    run = killed_while_holding(tmp_path, marker)

    [record] = local_instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    dead = record.dagster_run
    assert local_instance.event_log_storage.get_concurrency_info("warehouse").active_run_ids == {
        dead.run_id
    }
    health = local_instance.run_launcher.check_run_worker_health(dead)
    assert health.status == WorkerStatus.FAILED and str(run.pid) in health.msg

    # What the monitoring daemon does each poll under `dagster dev`: Dagster's own function.
    monitor_started_run(local_instance, None, record, logging.getLogger("test"))
    assert local_instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    # ...and what its slot cleanup then does (`free_dead_runs` does both at once, for CLI runs).
    [freed] = free_dead_runs(local_instance)
    assert freed.run_id == dead.run_id
    assert local_instance.event_log_storage.get_concurrency_info("warehouse").active_slot_count == 0

    marker.unlink()
    rerun = materialize_held(tmp_path, forever=False)
    output, _ = rerun.communicate(timeout=STARTUP_DEADLINE_SECONDS)
    assert rerun.returncode == 0, output.decode()
    assert marker.exists()
    statuses = {
        r.dagster_run.run_id: r.dagster_run.status for r in local_instance.get_run_records()
    }
    assert statuses.pop(dead.run_id) == DagsterRunStatus.FAILURE
    assert list(statuses.values()) == [DagsterRunStatus.SUCCESS]


def test_a_rerun_frees_what_a_killed_run_held_by_itself(local_instance, tmp_path):
    """From the command line, with no daemon and nobody running the cleanup: the re-run's executor
    finds the dead run first, fails it, releases its slot and says so in its own log."""
    marker = tmp_path / "holding"
    killed_while_holding(tmp_path, marker)
    [record] = local_instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    dead = record.dagster_run.run_id

    marker.unlink()
    rerun = materialize_held(tmp_path, forever=False)
    output, _ = rerun.communicate(timeout=STARTUP_DEADLINE_SECONDS)
    assert rerun.returncode == 0, output.decode()
    assert marker.exists()
    assert local_instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    said = f"run {dead} (__ASSET_JOB) died without ending (its worker is gone): marked failed"
    assert said in output.decode(), output.decode()
    assert local_instance.event_log_storage.get_concurrency_info("warehouse").active_slot_count == 0


def test_a_live_run_is_left_alone(local_instance, tmp_path):
    marker = tmp_path / "holding"
    run = materialize_held(tmp_path, forever=True)
    try:
        wait_until_holding(run, marker)
        assert free_dead_runs(local_instance) == []
        [record] = local_instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        health = local_instance.run_launcher.check_run_worker_health(record.dagster_run)
        assert health.status == WorkerStatus.RUNNING
        assert local_instance.event_log_storage.get_concurrency_info("warehouse").active_slot_count
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
