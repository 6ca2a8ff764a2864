"""Benchmark: the capacity forecast (`unified_assets.capacity`) against the nights that came.

The world is the one `dagster dev` serves by default (two years of history from the platform's first day).
Each source's nights are counted as the daily pipeline receives them: the records updated on each day, as
the API serves them two hours after the day ends. From the day the plan can first be made (`MIN_HISTORY_DAYS`
nights, plus the 30 it holds out) and every 28 days after, the plan is made from the nights before that
origin and compared with the next 30 nights:

- WAPE of the mean forecast, and the share of nights at or under the q90 forecast (what runs are sized by);
- heavy nights: a night whose records were at least `HEAVY_FACTOR` times the source's usual night (as the
  plan measures it at the origin) is a peak; the plan's recall of them, and the nights it flagged that were
  not (false flags per 100 nights);
- seconds to make one plan (fitting the forecaster on every source's nights).
"""

from __future__ import annotations

import time as clock
from dataclasses import replace
from datetime import date, timedelta

import pandas as pd

from benchmarks.batch_anomalies import daily_records
from benchmarks.extraction import Options
from benchmarks.harness import Report
from saas_simulator.config import WorldConfig
from saas_simulator.world import World
from unified_assets import settings
from unified_assets.capacity import (
    HEAVY_FACTOR,
    HORIZON_DAYS,
    MIN_HISTORY_DAYS,
    forecast_daily_records,
    usual_records,
)

SYSTEMS = ("accounting", "purchasing", "support")
ORIGIN_STEP_DAYS = 28


def run_capacity(options: Options) -> Report:
    report = Report("capacity")
    config = getattr(WorldConfig, options.sim.world)(scale=options.sim.scale)
    first = settings.DEFAULT_HISTORY_START
    world = World(replace(config, history_start=first))
    last = date.fromisoformat(options.last_day)
    print("  counting each night's records ...", flush=True)
    nights = nightly_counts(world, first, last)
    origins = origins_between(first, last)
    report.facts["nights"] = f"{first}..{last}"
    report.facts["origins"] = [f"{origin:%Y-%m-%d}" for origin in origins]
    compared = []
    for origin in origins:
        started = clock.perf_counter()
        known = nights[nights["day"] <= origin]
        forecast = forecast_daily_records(known)
        report.add("seconds per plan", "s", clock.perf_counter() - started)
        usual = usual_records(known)
        compared.append(against_what_came(forecast, nights, usual).assign(origin=origin))
    _record(report, pd.concat(compared, ignore_index=True))
    return report


def nightly_counts(world: World, first: date, last: date) -> pd.DataFrame:
    rows = [
        (system, pd.Timestamp(day), len(records))
        for system in SYSTEMS
        for day, records in daily_records(world, system, first, last)
    ]
    return pd.DataFrame(rows, columns=["source", "day", "records"])


def origins_between(first: date, last: date) -> list[pd.Timestamp]:
    earliest = first + timedelta(days=MIN_HISTORY_DAYS + HORIZON_DAYS)
    latest = last - timedelta(days=HORIZON_DAYS)
    return list(pd.date_range(earliest, latest, freq=f"{ORIGIN_STEP_DAYS}D"))


def against_what_came(
    forecast: pd.DataFrame, nights: pd.DataFrame, usual: dict[str, float]
) -> pd.DataFrame:
    joined = forecast.merge(nights.rename(columns={"records": "actual"}), on=["source", "day"])
    joined["usual"] = joined["source"].map(usual)
    joined["peak"] = joined["actual"] >= HEAVY_FACTOR * joined["usual"]
    joined["flagged"] = joined["q90"] >= HEAVY_FACTOR * joined["usual"]
    return joined


def _record(report: Report, compared: pd.DataFrame) -> None:
    for source, nights in compared.groupby("source"):
        report.add(
            f"{source} wape",
            "share",
            (nights["mean"] - nights["actual"]).abs().sum() / nights["actual"].sum(),
        )
        report.add(f"{source} q90 coverage", "share", (nights["actual"] <= nights["q90"]).mean())
        peaks = nights[nights["peak"]]
        report.add(f"{source} peak recall", "share", peaks["flagged"].mean() if len(peaks) else 1.0)
        false_flags = (nights["flagged"] & ~nights["peak"]).sum()
        report.add(f"{source} false flags per 100 nights", "count", 100 * false_flags / len(nights))
        report.facts[f"{source}.nights_compared"] = len(nights)
        report.facts[f"{source}.peaks"] = [
            f"{row.day:%Y-%m-%d}: {row.actual:.0f} records, q90 {row.q90:.0f}, usual {row.usual:.0f}"
            for row in peaks.itertuples()
        ]
