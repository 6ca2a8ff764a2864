"""Capacity planning for the platform's own daily work: how many records each source will send on each of
the next 30 days, how long each day's extraction will take and how much memory it will need, and how to
size the runs forecast to be heavy.

Which days teach what a night brings: only the days read soon after they ended (`NIGHTLY_AGE`). A source's
API returns each record once, as it is now, so a day read months later (by a backfill) holds only the
records *last* updated on it: the invoices paid since, the orders received since, are gone from it. In the
simulator's demo world, accounting's backfilled days of a quarter hold nearly nothing and its close day
everything the quarter re-versioned, while a nightly run reads ~50 invoices on an ordinary day: a forecast
learned from a backfill predicts backfills, not nights. The plan therefore starts once the daily pipeline
has run `MIN_HISTORY_DAYS` nights (each night's day counts, whoever read it); a backfill still teaches the
cost model what a record costs.

Why records first, then cost: the landed days say how many records each day brought, every day of the
history, with the calendar's patterns in them (weekdays, a month's end, a quarter's close), while the run
history says what a record costs (seconds, memory) but holds few runs of a day each: a backfill leaves one
long run over hundreds of days. So the records of each source are forecast day by day with the project's
own forecaster (`unified_assets.forecasting`, whose daily calendar knows the day of the month and of the
quarter), and priced with a cost model learned from every extraction step the instance recorded, long or
short.

A day is *heavy* for a source when its forecast (q90) is at least `HEAVY_FACTOR` times the source's usual
day (the median of its recent days). Its run reads the day's window in the usual night's slices times its
ratio to the usual day (each slice over its own connection, so the day takes about a usual day's time) and
asks for the memory the cost model forecasts, with headroom.

No Dagster here: `defs/capacity` gathers the history from the instance and publishes the plan; the daily
schedule reads the plan to size its run request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

HORIZON_DAYS = 30
# A day read within this long after it ended counts as a night's: at most a few records were updated
# again before it was read (the daily pipeline reads at 02:00, the change sensor within two days).
NIGHTLY_AGE = pd.Timedelta(days=2)
USUAL_DAYS = 56  # the recent days whose median is a source's usual day
HEAVY_FACTOR = 2.0
MAX_WINDOW_SLICES = 8  # the source resources' own limit (`SourceApi.MAX_WINDOW_SLICES`)
MEMORY_HEADROOM = 1.25
MEMORY_STEP_MB = 64  # memory requests are rounded up to this
# A forecaster over fewer days cannot tell a month's end from noise; with less, no plan is made.
MIN_HISTORY_DAYS = 90
# Training rows and boosting rounds for records per day: a few thousand days of three sources fit in
# seconds, and the calendar's peaks are found (unified_assets_tests/plain/test_capacity.py).
FORECASTER_OPTIONS = {"max_training_rows": 20_000, "regressor_params": {"max_iter": 100}}


class CapacityError(ValueError):
    """The history cannot be planned from; the message says what is missing."""


# ------------------------------------------------------------------------------ records per day


def nightly_days(history: pd.DataFrame) -> pd.DataFrame:
    """The days of `history` (source, day, records, extracted_at: when the source was read, in its own
    time) read within `NIGHTLY_AGE` of their end: what a nightly run receives. Each source's days since
    the last day missing among them."""
    ended = history["day"] + pd.Timedelta(days=1)
    age = pd.to_datetime(history["extracted_at"], utc=True).dt.tz_localize(None) - ended
    return since_last_gap(history[(age >= pd.Timedelta(0)) & (age <= NIGHTLY_AGE)])


def forecast_daily_records(history: pd.DataFrame, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """`history`: source, day, records (one row per day, as nightly runs received them). The `horizon`
    days after the last one: source, day, mean, q90."""
    from unified_assets.forecasting import DemandForecaster

    panel = _panel(history)
    forecasts = []
    for source in panel.frame["series_id"].unique():
        # One model per source: a global model over three systems would lend accounting's quarter
        # close and purchasing's month-end to support, which has neither.
        alone = panel.frame[panel.frame["series_id"] == source]
        forecaster = DemandForecaster(horizon=horizon, signals=(), **FORECASTER_OPTIONS)
        forecasts.append(forecaster.fit(alone).predict())
    forecast = pd.concat(forecasts, ignore_index=True)
    return forecast.rename(columns={"series_id": "source", "period": "day"})[
        ["source", "day", "mean", "q90"]
    ]


def forecast_against_actual(history: pd.DataFrame, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """The forecast made `horizon` days before the last landed day, beside what those days brought:
    source, day, mean, q90, actual. What the plan's figures are worth, on days the forecaster had not
    seen."""
    days = history["day"].drop_duplicates().sort_values()
    if len(days) <= horizon + MIN_HISTORY_DAYS:
        raise CapacityError(
            f"{len(days)} nightly days: at least {horizon + MIN_HISTORY_DAYS + 1} are needed to hold "
            f"{horizon} out and still learn from {MIN_HISTORY_DAYS}"
        )
    origin = days.iloc[-horizon - 1]
    forecast = forecast_daily_records(history[history["day"] <= origin], horizon)
    actual = history.rename(columns={"records": "actual"})[["source", "day", "actual"]]
    return forecast.merge(actual, on=["source", "day"], how="left").fillna({"actual": 0})


def weighted_error(compared: pd.DataFrame) -> dict[str, float]:
    """WAPE per source: how far the mean forecast was from the actual days, relative to their total."""
    errors = {}
    for source, days in compared.groupby("source"):
        total = days["actual"].sum()
        errors[str(source)] = float((days["mean"] - days["actual"]).abs().sum() / max(total, 1.0))
    return errors


def usual_records(history: pd.DataFrame, days: int = USUAL_DAYS) -> dict[str, float]:
    """Each source's usual day: the median of its last `days` landed days."""
    recent = history.sort_values("day").groupby("source").tail(days)
    return {
        str(source): float(max(values.median(), 1.0))
        for source, values in recent.groupby("source")["records"]
    }


def _panel(history: pd.DataFrame):
    from unified_assets.forecasting import prepare_panel

    missing = {"source", "day", "records"} - set(history.columns)
    if missing:
        raise CapacityError(f"the records history lacks column(s) {sorted(missing)}")
    history = since_last_gap(history)
    shortest = history.groupby("source")["day"].nunique().min() if len(history) else 0
    if shortest < MIN_HISTORY_DAYS:
        raise CapacityError(
            f"{shortest} days in a row as nightly runs received them (read within {NIGHTLY_AGE.days} "
            f"days of their end), at least {MIN_HISTORY_DAYS} are needed. A backfill's days do not "
            "count: they hold only the records last updated on each day. The plan starts once the "
            f"daily pipeline has run {MIN_HISTORY_DAYS} nights."
        )
    frame = history.rename(columns={"source": "series_id", "day": "period", "records": "y"})
    return prepare_panel(frame[["series_id", "period", "y"]])


def since_last_gap(history: pd.DataFrame) -> pd.DataFrame:
    """Each source's days after the last day missing from its history: a day never landed is unknown,
    and the forecaster would read it as a day without records."""
    kept = []
    for _, days in history.sort_values("day").groupby("source"):
        gaps = days["day"].diff() > pd.Timedelta(days=1)
        kept.append(days[gaps.cumsum() == gaps.sum()])
    return pd.concat(kept, ignore_index=True) if kept else history


# ------------------------------------------------------------------------------ what a record costs


@dataclass(frozen=True)
class StepRun:
    """One extraction step of one run, as the instance recorded it."""

    source: str
    run_id: str
    duration_s: float
    records: int
    peak_memory_mb: float | None = None


@dataclass(frozen=True)
class StepCost:
    """What one source's extraction step costs: seconds = overhead + per-record time x records, and peak
    memory likewise, fitted without negative terms over the steps the instance recorded. With fewer than
    three steps of different sizes the overhead cannot be told from the per-record time: the time is then
    all per record, and memory the largest peak seen (both err on the heavy side)."""

    source: str
    overhead_s: float
    seconds_per_record: float
    memory_base_mb: float | None
    memory_per_record_mb: float
    steps: int

    @classmethod
    def learn(cls, source: str, runs: Sequence[StepRun]) -> StepCost:
        mine = [run for run in runs if run.source == source and run.records > 0]
        if not mine:
            raise CapacityError(f"{source}: no extraction step with records in the run history")
        records = np.array([run.records for run in mine], dtype=float)
        overhead, per_record = _line(records, np.array([run.duration_s for run in mine]))
        measured = [run for run in mine if run.peak_memory_mb is not None]
        memory_base, memory_per_record = None, 0.0
        if measured:
            memory = np.array([run.peak_memory_mb for run in measured], dtype=float)
            sizes = np.array([run.records for run in measured], dtype=float)
            if _identifiable(sizes):
                memory_base, memory_per_record = _line(sizes, memory)
            else:
                memory_base = float(memory.max())
        return cls(source, overhead, per_record, memory_base, memory_per_record, len(mine))

    def seconds(self, records: np.ndarray, slices: np.ndarray | int = 1) -> np.ndarray:
        """A step's duration for `records`, read in `slices` parts at once."""
        return self.overhead_s + self.seconds_per_record * np.asarray(records) / slices

    def memory_mb(self, records: np.ndarray) -> np.ndarray | None:
        if self.memory_base_mb is None:
            return None
        return self.memory_base_mb + self.memory_per_record_mb * np.asarray(records)


def _identifiable(records: np.ndarray) -> bool:
    return len(records) >= 3 and np.unique(records).size >= 2


def _line(records: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of `values` against `records`, neither negative."""
    if not _identifiable(records):
        return 0.0, float(values.sum() / records.sum())
    from scipy.optimize import nnls

    design = np.column_stack([np.ones_like(records), records])
    (intercept, slope), _ = nnls(design, values.astype(float))
    return float(intercept), float(slope)


# ------------------------------------------------------------------------------ the plan


def capacity_plan(
    forecast: pd.DataFrame,
    usual: Mapping[str, float],
    costs: Mapping[str, StepCost],
    usual_slices: Mapping[str, int],
) -> pd.DataFrame:
    """One row per day and source: the records forecast (mean, q90), the usual day, whether the day is
    heavy, the window slices its extraction should read it in (a heavy day: the usual night's slices
    times its ratio to a usual day, at most MAX_WINDOW_SLICES), and the step's forecast duration (at q90
    records, in those slices) and peak memory (None when no step recorded its memory yet). The costs
    were learned from steps that read in the usual slices, so a duration scales by their ratio."""
    plan = forecast.copy()
    plan["usual_records"] = plan["source"].map(usual)
    ratio = plan["q90"] / plan["usual_records"]
    plan["heavy"] = ratio >= HEAVY_FACTOR
    usual_parts = plan["source"].map(lambda source: usual_slices.get(source, 1)).to_numpy()
    plan["window_slices"] = np.where(
        plan["heavy"], np.clip(np.ceil(ratio) * usual_parts, 1, MAX_WINDOW_SLICES), usual_parts
    ).astype(int)
    plan["slices_to_usual"] = plan["window_slices"] / usual_parts
    plan["duration_s"] = np.nan
    plan["peak_memory_mb"] = np.nan
    for source, rows in plan.groupby("source").groups.items():
        cost = costs.get(str(source))
        if cost is None:
            continue
        plan.loc[rows, "duration_s"] = cost.seconds(
            plan.loc[rows, "q90"].to_numpy(), plan.loc[rows, "slices_to_usual"].to_numpy()
        )
        memory = cost.memory_mb(plan.loc[rows, "q90"].to_numpy())
        if memory is not None:
            plan.loc[rows, "peak_memory_mb"] = memory
    return plan.sort_values(["day", "source"], ignore_index=True)[list(PLAN_COLUMNS)]


PLAN_COLUMNS = {
    "source": "object",
    "day": "datetime64[ns]",
    "mean": "float64",
    "q90": "float64",
    "usual_records": "float64",
    "heavy": "bool",
    "window_slices": "int64",
    "duration_s": "float64",
    "peak_memory_mb": "float64",
}


def empty_plan() -> pd.DataFrame:
    """A plan without days: published when no plan can be made, so no older plan sizes a run."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in PLAN_COLUMNS.items()})


def job_plan(plan: pd.DataFrame) -> pd.DataFrame:
    """The daily extraction run of each day (its three sources' steps at once): records summed, duration
    the longest step's, peak memory the steps' summed (each step is its own process), heavy if any step
    is."""
    days = plan.groupby("day")
    return pd.DataFrame(
        {
            "records_mean": days["mean"].sum(),
            "records_q90": days["q90"].sum(),
            "duration_s": days["duration_s"].max(),
            "peak_memory_mb": days["peak_memory_mb"].sum(min_count=1),
            "heavy": days["heavy"].any(),
        }
    ).reset_index()


@dataclass(frozen=True)
class RunSizing:
    """What a heavy day's run asks for: the window slices of each heavy source, and memory for the run."""

    day: date
    window_slices: dict[str, int]
    memory_request_mb: int | None
    reason: str


def sizing_for(plan: pd.DataFrame, day: date) -> RunSizing | None:
    """The sizing of `day`'s run from the plan, or None when the plan does not cover that day or
    forecasts an ordinary one."""
    rows = plan[pd.to_datetime(plan["day"]).dt.date == day]
    heavy = rows[rows["heavy"]]
    if heavy.empty:
        return None
    slices = {str(row.source): int(row.window_slices) for row in heavy.itertuples()}
    memory = rows["peak_memory_mb"].sum(min_count=1)
    request = None if pd.isna(memory) else memory_request_mb(float(memory))
    reason = "; ".join(
        f"{row.source}: {row.q90:,.0f} records forecast (q90), {row.q90 / row.usual_records:.1f}x "
        f"a usual day"
        for row in heavy.itertuples()
    )
    return RunSizing(day, slices, request, reason)


def memory_request_mb(peak_mb: float) -> int:
    return int(math.ceil(peak_mb * MEMORY_HEADROOM / MEMORY_STEP_MB) * MEMORY_STEP_MB)
