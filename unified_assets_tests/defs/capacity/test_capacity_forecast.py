"""`operations/capacity_forecast` on the platform's own history, in a real instance: right after a backfill
of the three sources and two nights' runs (no plan yet, and why; what a record costs is learned already),
then with nightly history on top of it whose month-end peaks are known (reported as nightly runs report
their days). Then the daily schedule sizing a heavy day's run by the plan: run config the daily job
accepts, the memory tag the Kubernetes launcher reads."""

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    build_schedule_context,
    materialize,
    validate_run_config,
)

from saas_simulator import SimClock, World
from unified_assets.definitions import defs
from unified_assets.defs.capacity.assets import capacity_forecast, extraction_steps
from unified_assets.defs.ingestion.assets import RAW_SOURCES, build_raw_asset
from unified_assets.defs.ingestion.schedules import CAPACITY_TAG, daily_pipeline_schedule
from unified_assets.lib.handoffs import CAPACITY_PLAN_TABLE
from unified_assets.lib.keys import RAW_EXTRACTS
from unified_assets.lib.pod_resources import PLANNED_MEMORY_TAG
from unified_assets.lib.storage import PlatformStorage
from unified_assets.sources.paging import iso_utc
from unified_assets_tests.support.resources import source_resources
from unified_assets_tests.support.run_history import records_with_month_end_peaks
from unified_assets_tests.support.simulators import serving
from unified_assets_tests.support.warehouse import range_tags

BACKFILL = ("2026-01-01", "2026-03-31")
NIGHTS = ("2026-03-30", "2026-03-31")
# Nightly history after the backfill; the plan's first day is a month's end.
NIGHTLY_DAYS = pd.date_range("2026-04-01", "2026-09-29", freq="D")
MONTH_END, ORDINARY_DAY = date(2026, 9, 30), date(2026, 10, 14)
RAW_ASSETS = [build_raw_asset(source, retry_policy=None) for source in RAW_SOURCES]


def plan_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("operations__capacity_forecast")
    return materialization.metadata


@pytest.fixture(scope="module")
def platform(tmp_path_factory, demo_config):
    """The instance and data folder after a backfill of every source and two nightly runs, with the
    capacity forecast materialized once then."""
    root = tmp_path_factory.mktemp("capacity")
    storage = PlatformStorage(data_dir=str(root / "data"))
    world = World(demo_config, clock=SimClock.frozen(datetime(2026, 4, 1, 6, tzinfo=UTC)))
    (root / "dagster").mkdir()
    with DagsterInstance.local_temp(str(root / "dagster")) as instance, serving(world) as server:
        resources = source_resources(server, storage)
        runs = [range_tags(*BACKFILL), *({"dagster/partition": night} for night in NIGHTS)]
        for tags in runs:
            assert materialize(
                RAW_ASSETS, resources=resources, instance=instance, tags=tags
            ).success
        after_backfill = materialize(
            [capacity_forecast], resources={"storage": storage}, instance=instance
        )
        yield instance, storage, after_backfill


@pytest.fixture(scope="module")
def with_nights(platform):
    """Six months of nights after the backfill, each day reported as the nightly run reports it."""
    instance, storage, _ = platform
    for row in records_with_month_end_peaks(NIGHTLY_DAYS).itertuples():
        metadata = {"records_received": int(row.records), "extracted_at": iso_utc(row.extracted_at)}
        key = RAW_EXTRACTS[row.source]
        partition = f"{row.day:%Y-%m-%d}"
        instance.report_runless_asset_event(
            AssetMaterialization(key, partition=partition, metadata=metadata)
        )
    result = materialize([capacity_forecast], resources={"storage": storage}, instance=instance)
    assert result.success
    return storage, result


def test_every_extraction_step_is_learned_from_with_its_records_and_memory(platform):
    instance, _, _ = platform
    steps = extraction_steps(instance)
    assert sorted(step.source for step in steps) == sorted(
        ["accounting", "purchasing", "support"] * 3
    )
    assert all(step.duration_s > 0 and step.records > 0 for step in steps)
    assert all(step.peak_memory_mb and step.peak_memory_mb > 50 for step in steps)
    backfill = max(steps, key=lambda step: step.records)
    assert backfill.records > 20 * min(step.records for step in steps)


def test_right_after_a_backfill_there_is_no_plan_and_the_reason_is_given(platform):
    """The backfill's days hold only the records last updated on each day (and the test's nights were
    read long after their world's time): none is a night's, so no plan sizes a run yet."""
    _, _, after_backfill = platform
    assert after_backfill.success
    metadata = plan_metadata(after_backfill)
    assert metadata["status"].value.startswith(
        "no plan: 0 days in a row as nightly runs received them"
    )
    assert metadata["days_landed"].value >= 3 * 90
    assert "| accounting | 3 |" in metadata["step_costs"].value, (
        "a backfill already prices a record"
    )


def test_with_nightly_history_the_plan_covers_the_next_30_days_of_each_source(with_nights):
    storage, _ = with_nights
    plan = CAPACITY_PLAN_TABLE.read(storage)
    assert len(plan) == 90
    assert plan.groupby("source")["day"].agg(["min", "max", "nunique"]).to_dict("list") == {
        "min": [pd.Timestamp(MONTH_END)] * 3,
        "max": [pd.Timestamp("2026-10-29")] * 3,
        "nunique": [30] * 3,
    }
    assert plan["duration_s"].gt(0).all() and plan["peak_memory_mb"].gt(0).all()


def test_a_rerun_on_the_same_history_publishes_the_same_plan(with_nights, platform):
    instance, _, _ = platform
    storage, _ = with_nights
    before = CAPACITY_PLAN_TABLE.read(storage)
    rerun = materialize([capacity_forecast], resources={"storage": storage}, instance=instance)
    assert rerun.success
    pd.testing.assert_frame_equal(CAPACITY_PLAN_TABLE.read(storage), before)


def test_the_month_end_is_found_heavy_where_the_nights_peak(with_nights):
    storage, result = with_nights
    plan = CAPACITY_PLAN_TABLE.read(storage)
    heavy = plan[plan["heavy"]]
    assert set(heavy["day"]) == {pd.Timestamp(MONTH_END)}
    assert set(heavy["source"]) == {"accounting", "purchasing"}
    metadata = plan_metadata(result)
    assert "2026-09-30 (Wed)" in metadata["heavy_days"].value
    assert metadata["forecast_vs_actual"].value.count("data:image/png;base64,") == 3
    assert max(metadata["holdout_wape"].value.values()) < 0.3
    assert metadata["days_as_nights_received_them"].value == 3 * len(NIGHTLY_DAYS)


def night_of(day: date, storage: PlatformStorage):
    tick = datetime.combine(day + timedelta(days=1), time(2), tzinfo=UTC)
    context = build_schedule_context(
        scheduled_execution_time=tick,
        resources={"storage": storage},
        repository_def=defs.get_repository_def(),
    )
    [request] = daily_pipeline_schedule().evaluate_tick(context).run_requests
    return request


def test_the_daily_schedule_sizes_the_heavy_days_run_and_leaves_an_ordinary_one_alone(with_nights):
    storage, _ = with_nights
    heavy = night_of(MONTH_END, storage)
    for resource in ("accounting_api", "purchasing_api"):
        assert heavy.run_config["resources"][resource]["config"]["window_slices"] >= 2
    assert "support_api" not in heavy.run_config["resources"]
    assert "purchasing:" in heavy.tags[CAPACITY_TAG]
    assert heavy.tags[PLANNED_MEMORY_TAG].endswith("Mi")
    daily_job = defs.resolve_job_def("daily_extracts")
    assert validate_run_config(daily_job, heavy.run_config)["resources"]["purchasing_api"]

    ordinary = night_of(ORDINARY_DAY, storage)
    assert ordinary.run_config == {}
    assert CAPACITY_TAG not in ordinary.tags and PLANNED_MEMORY_TAG not in ordinary.tags


def test_without_a_plan_or_with_an_unreadable_one_the_night_runs_at_its_usual_size(tmp_path):
    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    assert night_of(MONTH_END, storage).run_config == {}
    location = CAPACITY_PLAN_TABLE.location(storage)
    storage.handoff_dir.mkdir(parents=True)
    with open(location, "w") as broken:
        broken.write("not parquet")
    request = night_of(MONTH_END, storage)
    assert request.run_config == {} and CAPACITY_TAG not in request.tags


def test_too_short_a_history_publishes_an_empty_plan_and_says_why(tmp_path):
    storage = PlatformStorage(data_dir=str(tmp_path / "data"))
    with DagsterInstance.ephemeral() as instance:
        result = materialize([capacity_forecast], resources={"storage": storage}, instance=instance)
    assert result.success
    status = plan_metadata(result)["status"].value
    assert status.startswith("no plan: 0 days in a row as nightly runs received them")
    assert CAPACITY_PLAN_TABLE.read(storage).empty
