"""The local Dagster instance's settings (deploy/dagster.yaml, which scripts/dev copies into DAGSTER_HOME)."""

import shutil
import sys

from dagster import DagsterEventType, DagsterInstance, asset, materialize
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.scheduler.instigation import TickStatus

from unified_assets.settings import PROJECT_ROOT


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
