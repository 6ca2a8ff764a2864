"""Capacity planning as a library: a synthetic history whose peaks are known (month-ends in purchasing and
accounting, none in support), the forecast that must find them, the cost model that must recover what a
record costs, and the sizing a heavy day gets."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from unified_assets.capacity import (
    HEAVY_FACTOR,
    MIN_HISTORY_DAYS,
    NIGHTLY_AGE,
    CapacityError,
    StepCost,
    StepRun,
    capacity_plan,
    forecast_against_actual,
    forecast_daily_records,
    job_plan,
    memory_request_mb,
    nightly_days,
    since_last_gap,
    sizing_for,
    usual_records,
    weighted_error,
)
from unified_assets_tests.support.run_history import MONTH_END_PEAKS, records_with_month_end_peaks

DAYS = pd.date_range("2025-06-01", "2026-11-29", freq="D")
MONTH_END = pd.Timestamp("2026-11-30")  # the first day forecast
SOURCES = MONTH_END_PEAKS
# Each source's slices on a usual night: purchase orders are read in four.
USUAL_SLICES = {"accounting": 1, "purchasing": 4, "support": 1}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return records_with_month_end_peaks(DAYS)


@pytest.fixture(scope="module")
def forecast(history) -> pd.DataFrame:
    return forecast_daily_records(history)


def steps_costing(source: str, overhead_s: float, ms_per_record: float) -> list[StepRun]:
    """Steps of several sizes whose durations follow a known cost, memory 300 MB + 0.02 MB a record."""
    rng = np.random.default_rng(1)
    sizes = [40, 55, 300, 2_000, 12_000, 35]
    return [
        StepRun(
            source,
            f"run-{index}",
            duration_s=overhead_s + ms_per_record / 1000 * size + rng.normal(0, 0.05),
            records=size,
            peak_memory_mb=300 + 0.02 * size,
        )
        for index, size in enumerate(sizes)
    ]


# ------------------------------------------------------------------------------ the forecast


def test_the_forecast_finds_the_month_end_peaks_where_there_are_some(forecast):
    assert set(forecast["source"]) == set(SOURCES)
    assert forecast.groupby("source")["day"].nunique().eq(30).all()
    assert forecast["day"].min() == MONTH_END
    month_end = forecast["day"].dt.is_month_end
    for source, (_, factor) in SOURCES.items():
        mine = forecast["source"] == source
        peak = forecast.loc[mine & month_end, "mean"].item()
        ordinary = forecast.loc[mine & ~month_end, "mean"].median()
        if factor > 1:
            assert peak > 0.6 * factor * ordinary, (source, peak, ordinary)
        else:
            assert peak < 1.5 * ordinary, (source, peak, ordinary)


def test_the_forecast_made_a_month_ago_is_close_to_what_came(history):
    compared = forecast_against_actual(history)
    assert compared["day"].min() == DAYS[-30]
    assert compared["actual"].sum() == history[history["day"] >= DAYS[-30]]["records"].sum()
    errors = weighted_error(compared)
    assert set(errors) == set(SOURCES)
    assert max(errors.values()) < 0.25, errors


def test_a_short_history_is_refused_with_what_is_missing(history):
    short = history[history["day"] > DAYS[-MIN_HISTORY_DAYS + 10]]
    with pytest.raises(CapacityError, match=f"at least {MIN_HISTORY_DAYS} are needed"):
        forecast_daily_records(short)


def test_days_before_a_gap_are_left_out_rather_than_read_as_days_without_records(history):
    gap = (history["day"] >= "2026-03-01") & (history["day"] <= "2026-03-03")
    kept = since_last_gap(history[~gap])
    assert kept["day"].min() == pd.Timestamp("2026-03-04")
    assert (
        kept.groupby("source")["day"]
        .nunique()
        .eq((DAYS[-1] - pd.Timestamp("2026-03-04")).days + 1)
        .all()
    )


def test_only_days_read_soon_after_they_ended_count_as_what_a_night_receives(history):
    """A backfill read every day before 2026-06-30 at noon on 2026-07-01: those days hold only the
    records last updated on them, so they teach nothing about a night; the nights after it do."""
    backfilled = history["day"] < "2026-06-30"
    read = history.assign(
        extracted_at=history["extracted_at"].where(
            ~backfilled, pd.Timestamp("2026-07-01 12:00", tz="UTC")
        )
    )
    kept = nightly_days(read)
    assert kept["day"].min() == pd.Timestamp("2026-06-29"), (
        "the backfill's last day was read in time"
    )
    assert len(kept) == len(history[history["day"] >= "2026-06-29"])
    late = read.assign(extracted_at=read["extracted_at"] + NIGHTLY_AGE + pd.Timedelta(hours=1))
    assert nightly_days(late).empty
    with pytest.raises(CapacityError, match="A backfill's days do not count"):
        forecast_daily_records(nightly_days(late))


# ------------------------------------------------------------------------------ what a record costs


def test_the_cost_model_recovers_the_overhead_and_the_time_per_record():
    cost = StepCost.learn(
        "purchasing", steps_costing("purchasing", overhead_s=2.0, ms_per_record=1.5)
    )
    assert cost.overhead_s == pytest.approx(2.0, abs=0.15)
    assert cost.seconds_per_record * 1000 == pytest.approx(1.5, rel=0.05)
    assert cost.memory_base_mb == pytest.approx(300, rel=0.01)
    assert cost.memory_mb(np.array([10_000]))[0] == pytest.approx(500, rel=0.02)


def test_one_long_run_prices_every_second_per_record_and_memory_at_its_peak():
    backfill = [
        StepRun("accounting", "backfill", duration_s=90.0, records=9_000, peak_memory_mb=410.0)
    ]
    cost = StepCost.learn("accounting", backfill)
    assert (cost.overhead_s, cost.seconds_per_record) == (0.0, 0.01)
    assert cost.memory_mb(np.array([10]))[0] == 410.0
    unmeasured = StepCost.learn("accounting", [StepRun("accounting", "old", 9.0, 900)])
    assert unmeasured.memory_mb(np.array([10])) is None


def test_a_source_without_steps_is_named():
    with pytest.raises(CapacityError, match="support: no extraction step"):
        StepCost.learn("support", steps_costing("purchasing", 1.0, 1.0))


# ------------------------------------------------------------------------------ the plan and the sizing


@pytest.fixture(scope="module")
def plan(history, forecast) -> pd.DataFrame:
    costs = {
        source: StepCost.learn(source, steps_costing(source, overhead_s=2.0, ms_per_record=50))
        for source in SOURCES
    }
    return capacity_plan(forecast, usual_records(history), costs, USUAL_SLICES)


def test_only_the_month_end_of_the_sources_that_peak_is_heavy(plan):
    heavy = plan[plan["heavy"]]
    assert set(heavy["source"]) == {"purchasing", "accounting"}
    assert set(heavy["day"]) == {MONTH_END}
    assert (heavy["q90"] >= HEAVY_FACTOR * heavy["usual_records"]).all()
    usual = plan.loc[~plan["heavy"]]
    assert (usual["window_slices"] == usual["source"].map(USUAL_SLICES)).all()


def test_a_heavy_day_is_read_in_slices_so_it_takes_about_a_usual_days_time(plan):
    heavy = plan[plan["heavy"]]
    assert (heavy["window_slices"] >= 2 * heavy["source"].map(USUAL_SLICES)).all()
    usual_day = plan[(plan["source"] == "purchasing") & ~plan["heavy"]]["duration_s"].median()
    sliced = heavy[heavy["source"] == "purchasing"]["duration_s"].item()
    assert sliced < 2 * usual_day


def test_the_daily_run_of_a_heavy_day_sums_memory_and_takes_its_longest_step(plan):
    runs = job_plan(plan)
    assert len(runs) == 30
    last = runs[runs["day"] == MONTH_END].iloc[0]
    steps = plan[plan["day"] == MONTH_END]
    assert bool(last["heavy"])
    assert last["peak_memory_mb"] == pytest.approx(steps["peak_memory_mb"].sum())
    assert last["duration_s"] == pytest.approx(steps["duration_s"].max())


def test_the_sizing_of_a_heavy_day_and_of_an_ordinary_one(plan):
    sizing = sizing_for(plan, MONTH_END.date())
    assert sizing is not None
    assert set(sizing.window_slices) == {"purchasing", "accounting"}
    steps = plan[plan["day"] == MONTH_END]
    assert sizing.memory_request_mb == memory_request_mb(steps["peak_memory_mb"].sum())
    assert sizing.memory_request_mb % 64 == 0
    assert "purchasing:" in sizing.reason and "a usual day" in sizing.reason
    assert sizing_for(plan, date(2026, 12, 15)) is None
    assert sizing_for(plan, date(2027, 3, 31)) is None, "a day the plan does not cover"
