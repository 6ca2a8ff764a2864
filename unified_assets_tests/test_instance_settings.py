"""The local Dagster instance's settings (deploy/dagster.yaml, which scripts/dev copies into DAGSTER_HOME)."""

import shutil

from dagster import DagsterInstance
from dagster._core.definitions.run_request import InstigatorType
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
