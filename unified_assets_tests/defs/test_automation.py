"""The platform runs by itself: schedules start the extracts at the right times for the right days, and
declarative automation carries every change downstream, never before the inputs exist and never past a
failed blocking check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
    materialize,
    multi_asset_check,
)
from dagster._core.definitions.declarative_automation.serialized_objects import (
    AutomationConditionEvaluationWithRunIds,
)

from unified_assets import settings
from unified_assets.definitions import defs
from unified_assets.defs.automation import (
    automation_history_retention,
    purge_old_automation_evaluations,
)
from unified_assets.defs.forecast.demand_history import DEMAND_TRAINING_SET
from unified_assets.defs.ingestion import schedules
from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.defs.ingestion.checks import raw_extract_checks
from unified_assets.defs.ingestion.landed_checks import NO_PII_IN_LANDED_TEXT
from unified_assets.lib.keys import DEMAND_FORECAST, DEMAND_FORECAST_MODEL, TICKET_SENTIMENT
from unified_assets_tests.support.resources import source_resources
from unified_assets_tests.support.simulators import frozen_world, serving

RAW_TICKETS = AssetKey(["raw", "support_tickets"])
STAGED_TICKETS = AssetKey(["staging", "stg_support__tickets"])
STAGED_INVOICES = AssetKey(["staging", "stg_accounting__invoices"])
SEED = AssetKey(["seeds", "currency_rates"])
UNIFIED_DEMAND = AssetKey(["marts", "unified_demand"])
WEEKLY_DEMAND = AssetKey(["marts", "sku_demand_weekly"])
REPOSITORY = defs.get_repository_def()


# ------------------------------------------------------------------------------------------- schedules


def test_the_daily_pipeline_extracts_the_day_that_just_ended_at_two_utc(storage):
    daily = schedules.daily_pipeline_schedule()
    assert daily.cron_schedule == "0 2 * * *" and daily.execution_timezone == "UTC"
    tick = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    [request] = daily.evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=tick, resources={"storage": storage}, repository_def=REPOSITORY
        )
    ).run_requests
    assert request.partition_key == "2026-11-23"
    assert request.run_key == "daily:2026-11-23", "the same night never extracts twice"
    assert daily.job_name == "daily_extracts"
    job = defs.resolve_job_def("daily_extracts")
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        "raw/invoices",
        "raw/purchase_orders",
        "raw/support_tickets",
    }


def test_the_daily_pipeline_time_is_configurable_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv(settings.DAILY_PIPELINE_CRON_VAR, "30 5 * * 1-5")
    assert schedules.daily_pipeline_schedule().cron_schedule == "30 5 * * 1-5"
    monkeypatch.setenv(settings.DAILY_PIPELINE_CRON_VAR, "at two")
    with pytest.raises(settings.SettingError, match="UNIFIED_ASSETS_DAILY_PIPELINE_CRON='at two'"):
        schedules.daily_pipeline_schedule()


def test_a_night_before_the_first_day_of_history_is_skipped_with_the_reason(monkeypatch, storage):
    monkeypatch.setenv(settings.HISTORY_START_VAR, "2026-11-24")
    tick = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    result = schedules.daily_pipeline_schedule().evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=tick, resources={"storage": storage}, repository_def=REPOSITORY
        )
    )
    assert result.run_requests == []
    assert "2026-11-23 is before the first day of history (2026-11-24" in result.skip_message


def test_tickets_refresh_every_quarter_hour_for_today():
    refresh = schedules.ticket_and_sentiment_refresh
    assert refresh.cron_schedule == "*/15 * * * *"
    requests = [
        refresh.evaluate_tick(
            build_schedule_context(
                scheduled_execution_time=datetime(2026, 11, 24, 9, m, tzinfo=UTC),
                repository_def=REPOSITORY,
            )
        ).run_requests[0]
        for m in (0, 15)
    ]
    assert {r.partition_key for r in requests} == {"2026-11-24"}
    assert len({r.run_key for r in requests}) == 2


def test_the_schedules_and_the_automation_sensor_are_on_by_default():
    assert {s.name: s.default_status.value for s in defs.schedules} == {
        "capacity_planning": "RUNNING",
        "daily_pipeline": "RUNNING",
        "ticket_and_sentiment_refresh": "RUNNING",
        "weekly_warehouse_maintenance": "RUNNING",
    }
    assert defs.get_sensor_def("automation").default_status.value == "RUNNING"


# ------------------------------------------------------------------------------------------ automation


def requested(result) -> set[AssetKey]:
    graph = defs.resolve_asset_graph()
    return {key for key in graph.get_all_asset_keys() if result.get_num_requested(key)}


@pytest.fixture
def landed_day(storage, demo_config):
    """A first automation tick on an empty instance, then one day of every extract landed through the
    real raw assets: (instance, the tick's cursor)."""
    instance = DagsterInstance.ephemeral()
    before = evaluate_automation_conditions(defs=defs, instance=instance)
    with serving(frozen_world(demo_config)) as server:
        result = materialize(
            [*raw_assets, *raw_extract_checks],
            partition_key="2026-03-14",
            instance=instance,
            resources=source_resources(server, storage),
        )
    assert result.success
    return instance, before


def test_nothing_downstream_starts_before_an_extract_has_landed(landed_day):
    _, before = landed_day
    assert requested(before) <= {SEED}, "only the seed, which reads nothing, may build"


def test_a_landed_day_rebuilds_the_models_but_not_what_needs_a_model(landed_day):
    instance, before = landed_day
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    rebuilt = requested(result)
    assert {STAGED_TICKETS, STAGED_INVOICES} <= rebuilt
    assert not {DEMAND_FORECAST_MODEL, DEMAND_FORECAST} & rebuilt, (
        "training is asked for by its sensor, not here"
    )
    assert {
        SEED,
        TICKET_SENTIMENT,
        UNIFIED_DEMAND,
        WEEKLY_DEMAND,
        DEMAND_TRAINING_SET,
    } <= rebuilt, "the whole chain, in one tick"
    again = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert STAGED_TICKETS not in requested(again), "one change is handled once"


def test_a_failed_blocking_check_stops_automation_in_later_runs(landed_day):
    instance, before = landed_day
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=RAW_TICKETS,
            check_name="no_pii_in_landed_text",
            passed=False,
            severity=AssetCheckSeverity.ERROR,
        )
    )
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert not {STAGED_TICKETS, TICKET_SENTIMENT} & requested(result)
    assert STAGED_INVOICES in requested(result), "other sources go on"


def test_no_rebuild_while_the_run_that_landed_a_day_has_yet_to_check_it(
    storage, demo_config, tmp_path
):
    """A run records its raw materializations before its check step reports: the models that read the
    day must wait for its blocking check, not take the previous day's pass for it."""
    released = threading.Event()

    @multi_asset_check(specs=[NO_PII_IN_LANDED_TEXT])
    def pii_check_still_running() -> Iterator[AssetCheckResult]:
        released.wait(timeout=120)
        yield AssetCheckResult(
            asset_key=RAW_TICKETS, check_name=NO_PII_IN_LANDED_TEXT.name, passed=True
        )

    raw_tickets = next(a for a in raw_assets if RAW_TICKETS in a.keys)
    with (
        DagsterInstance.local_temp(str(tmp_path)) as instance,
        serving(frozen_world(demo_config)) as server,
    ):
        resources = source_resources(server, storage)

        def land(day: str, assets: list) -> None:
            assert materialize(
                assets, partition_key=day, instance=instance, resources=resources
            ).success

        first_tick = evaluate_automation_conditions(defs=defs, instance=instance)
        land("2026-03-14", [raw_tickets, *raw_extract_checks])
        settled = evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first_tick.cursor
        )
        assert STAGED_TICKETS in requested(settled)
        settled = evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=settled.cursor
        )

        landing = threading.Thread(
            target=land, args=("2026-03-15", [raw_tickets, pii_check_still_running])
        )
        landing.start()
        try:
            wait_for_materialization(instance, RAW_TICKETS, "2026-03-15")
            mid_run = evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=settled.cursor
            )
            assert STAGED_TICKETS not in requested(mid_run), (
                "the day's blocking check has not reported"
            )
        finally:
            released.set()
            landing.join()
        checked = evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=mid_run.cursor
        )
        assert STAGED_TICKETS in requested(checked), "once it passes, the models rebuild"


def wait_for_materialization(instance: DagsterInstance, key: AssetKey, day: str) -> None:
    """Until the day's materialization is recorded (the run then goes on to its check)."""
    deadline = time.monotonic() + 120
    while not instance.get_materialized_partitions(key) >= {day}:
        assert time.monotonic() < deadline, f"{key.to_user_string()} {day} never materialized"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------- retention


def test_the_automation_evaluations_are_kept_an_hour(tmp_path):
    """What the automation sensor records for the UI, stored as the daemon stores it, outlives a purge
    within the hour and not after."""
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        evaluated = evaluate_automation_conditions(defs=defs, instance=instance)
        records = [
            AutomationConditionEvaluationWithRunIds(result.serializable_evaluation, frozenset())
            for result in evaluated.results
        ]
        storage = instance.schedule_storage
        storage.add_auto_materialize_asset_evaluations(evaluation_id=1, asset_evaluations=records)
        key = records[0].evaluation.key

        def kept() -> int:
            return len(storage.get_auto_materialize_asset_evaluations(key=key, limit=10))

        now = datetime.now(UTC)
        purge_old_automation_evaluations(instance, now + timedelta(minutes=50))
        assert kept() == 1
        purge_old_automation_evaluations(instance, now + timedelta(minutes=70))
        assert kept() == 0


def test_the_retention_sensor_is_on_and_starts_no_runs(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        tick = automation_history_retention(build_sensor_context(instance=instance))
    assert (
        isinstance(tick, SkipReason) and "removed the automation's evaluations" in tick.skip_message
    )
    assert automation_history_retention.default_status.value == "RUNNING"
