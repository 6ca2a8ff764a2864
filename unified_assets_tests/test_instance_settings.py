"""The local Dagster instance's settings (deploy/dagster.yaml, which scripts/dev copies into DAGSTER_HOME)."""

import shutil
import signal
import subprocess
import sys

from dagster import DagsterEventType, DagsterInstance, asset, materialize
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.scheduler.instigation import TickStatus

from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.services import cluster_instance_home


def test_the_local_instance_keeps_a_day_of_idle_ticks_and_a_month_of_failures(
    tmp_path, monkeypatch
):
    """Ticks are what a laptop's instance accumulates fastest: the automation sensor ticks every 30 s."""
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        for instigator in (InstigatorType.SENSOR, InstigatorType.AUTO_MATERIALIZE):
            kept = instance.get_tick_retention_settings(instigator)
            assert kept[TickStatus.SKIPPED] == 1 and kept[TickStatus.FAILURE] == 30, instigator


def test_what_a_step_prints_goes_to_its_log_files_not_the_terminal(tmp_path, monkeypatch, capfd):
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    @asset
    def talkative() -> None:
        print("a line dbt would print")
        print("and one on stderr", file=sys.stderr)

    with DagsterInstance.get() as instance:
        result = materialize([talkative], instance=instance)
        [captured_event] = [
            event
            for event in result.all_events
            if event.event_type == DagsterEventType.LOGS_CAPTURED
        ]
        log_key = [result.run_id, "compute_logs", captured_event.logs_captured_data.file_key]
        captured = instance.compute_log_manager.get_log_data(log_key)
    assert captured.stdout.decode() == "a line dbt would print\n"
    assert "and one on stderr\n" in captured.stderr.decode()
    terminal = capfd.readouterr()
    assert "a line dbt would print" not in terminal.out + terminal.err
    assert "and one on stderr" not in terminal.out + terminal.err


def test_queued_runs_start_within_a_second(tmp_path, monkeypatch):
    """Every run launched from the UI, a sensor or the automation waits for the queue's daemon."""
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 1


def test_the_cluster_instance_keeps_runs_in_postgres_and_step_logs_in_the_bucket(
    tmp_path, monkeypatch, postgres_database, s3_server
):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    bucket = cluster_instance_home(tmp_path, monkeypatch, postgres_database, s3_server)

    @asset
    def talkative() -> None:
        print("a line dbt would print")

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue.max_concurrent_runs == 10
        assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [
            ("dagster/backfill", 2)
        ]
        assert concurrency.pool_config.default_pool_limit == 1
        result = materialize([talkative], instance=instance)
    assert result.success
    with postgres_database.connect() as connection:
        [(status,)] = connection.execute(
            "select status from runs where run_id = %s", [result.run_id]
        ).fetchall()
    assert status == "SUCCESS"
    logged = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="dagster/compute-logs/")
    keys = [item["Key"] for item in logged.get("Contents", [])]
    assert any(result.run_id in key and key.endswith(".out") for key in keys), keys


def test_a_process_started_after_an_in_process_run_stops_when_terminated(tmp_path):
    """What the test processes rely on however they were started (conftest.py takes the interrupt
    signals back): after an in-process run, a child such as the compute-log capture's `tail -F` still
    ends on SIGTERM instead of holding its step for 30 s."""

    @asset
    def anything() -> int:
        return 1

    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert materialize([anything], instance=instance).success
    child = subprocess.Popen(["sleep", "60"])
    try:
        child.terminate()
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        child.kill()  # a child that ignored SIGTERM does not outlive the test
