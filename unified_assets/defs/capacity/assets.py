"""The platform planning its own work: `operations/capacity_forecast`.

Every night before the daily pipeline, the `capacity_planning` schedule materializes the forecast of the
next 30 days' extraction work: records per source per night, learned from the days read soon after they
ended (each raw partition's `records_received` and `extracted_at`), priced in seconds and memory by what
the instance recorded of each extraction step (its duration in the step statistics, its records and peak
memory in the run's totals). The plan is a hand-off table the daily schedule reads: a day forecast to be
heavy gets a run sized for it (`defs/ingestion/schedules.py`). The forecasting itself, and why a
backfill's days are left out, is `unified_assets.capacity`.
"""

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    RunsFilter,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from unified_assets.lib.handoffs import CAPACITY_PLAN_TABLE
from unified_assets.lib.keys import CAPACITY_FORECAST, DATA_PLATFORM, RAW_EXTRACTS, run_total_tag
from unified_assets.lib.metadata import frame_schema, markdown_table, png_markdown
from unified_assets.lib.source_apis import USUAL_WINDOW_SLICES
from unified_assets.lib.storage import PlatformStorage

if TYPE_CHECKING:
    import pandas as pd
    from dagster._core.execution.stats import RunStepKeyStatsSnapshot

    from unified_assets.capacity import StepRun

HISTORY_DAYS = 730  # two years of landed days: two of each quarter's close
RUNS_PER_SOURCE = 60  # the most recent extraction runs of each source the cost model learns from
MATERIALIZATIONS_SCANNED = 2_000  # enough to reach past a two-year backfill to the runs before it
PLOTTED_DAYS = 90
PLAN_CRON = "0 1 * * *"  # an hour before the daily pipeline's default (02:00 UTC)


@asset(
    key=CAPACITY_FORECAST,
    deps=list(RAW_EXTRACTS.values()),
    group_name="operations",
    owners=[DATA_PLATFORM],
    kinds={"python", "scikit-learn", "parquet"},
    description=(
        "The next 30 days of the daily extraction's work: records per source and day (mean, q90), "
        "each day's forecast duration and peak memory, and whether the day is heavy (its run is then "
        "read in window slices and asks for more memory). Learned from the landed days and the "
        "instance's run and step history."
    ),
)
def capacity_forecast(
    context: AssetExecutionContext, storage: PlatformStorage
) -> MaterializeResult:
    from unified_assets import capacity

    history = landed_records(context.instance)
    nightly = capacity.nightly_days(history)
    steps = extraction_steps(context.instance)
    costs = {
        source: capacity.StepCost.learn(source, steps)
        for source in RAW_EXTRACTS
        if any(step.source == source and step.records for step in steps)
    }
    learned_from = {
        "step_costs": MetadataValue.md(step_costs_markdown(costs)),
        "days_landed": len(history),
        "days_as_nights_received_them": len(nightly),
    }
    try:
        forecast = capacity.forecast_daily_records(nightly)
    except capacity.CapacityError as error:
        context.log.warning(f"no capacity plan: {error}")
        location = CAPACITY_PLAN_TABLE.write(storage, capacity.empty_plan())
        return MaterializeResult(
            metadata={
                "status": f"no plan: {error}",
                "path": MetadataValue.path(location),
                **learned_from,
            }
        )
    plan = capacity.capacity_plan(
        forecast, capacity.usual_records(nightly), costs, USUAL_WINDOW_SLICES
    )
    location = CAPACITY_PLAN_TABLE.write(storage, plan)
    heavy = plan[plan["heavy"]]
    context.log.info(
        f"capacity plan for {plan['day'].min():%Y-%m-%d}..{plan['day'].max():%Y-%m-%d}: "
        f"{heavy['day'].nunique()} heavy days (learned from {len(nightly)} nightly source-days and "
        f"{len(steps)} extraction steps)"
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(location),
            "dagster/row_count": len(plan),
            "dagster/column_schema": frame_schema(plan),
            "heavy_days": MetadataValue.md(heavy_days_markdown(heavy)),
            "daily_run_plan": MetadataValue.md(markdown_table(_shown(capacity.job_plan(plan)))),
            **learned_from,
            **held_out_days(nightly, forecast),
        }
    )


def held_out_days(history: "pd.DataFrame", forecast: "pd.DataFrame") -> dict[str, Any]:
    """The forecast made 30 days before the last landed day against what those days brought, plotted
    with the plan's days; only the plan's when the history is too short to hold 30 days out."""
    from unified_assets import capacity

    try:
        compared = capacity.forecast_against_actual(history)
    except capacity.CapacityError as error:
        return {
            "forecast_vs_actual": records_plots(history, None, forecast),
            "holdout_wape": f"not measured: {error}",
        }
    errors = capacity.weighted_error(compared)
    return {
        "forecast_vs_actual": records_plots(history, compared, forecast),
        "holdout_wape": {source: round(error, 3) for source, error in errors.items()},
    }


capacity_planning_job = define_asset_job(
    "capacity_planning",
    selection=[CAPACITY_FORECAST],
    description="The next 30 days of the daily extraction's work, forecast from the run history.",
)
capacity_planning = ScheduleDefinition(
    name="capacity_planning",
    job=capacity_planning_job,
    cron_schedule=PLAN_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        f"At {PLAN_CRON} (UTC): the capacity forecast, so the daily pipeline's next run is sized by "
        "a fresh plan."
    ),
)


# ------------------------------------------------------------------------------ the history


def landed_records(instance: DagsterInstance, days: int = HISTORY_DAYS) -> "pd.DataFrame":
    """source, day, records, extracted_at: what each raw partition's latest materialization received,
    and when its source was read (in the source's time; the event's own time for materializations from
    before the platform recorded it)."""
    import pandas as pd

    rows = []
    for source, key in RAW_EXTRACTS.items():
        for day, records, extracted_at in _latest_per_partition(instance, key, days):
            rows.append((source, pd.Timestamp(day), records, extracted_at))
    frame = pd.DataFrame(rows, columns=["source", "day", "records", "extracted_at"])
    return frame.astype({"day": "datetime64[ns]", "records": "int64"}).assign(
        extracted_at=pd.to_datetime(frame["extracted_at"], utc=True)
    )


def _latest_per_partition(
    instance: DagsterInstance, key: AssetKey, days: int
) -> list[tuple[date, int, datetime]]:
    latest = instance.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION
    )
    newest = sorted(latest, reverse=True)[:days]
    found = []
    for batch in _batches([latest[partition] for partition in newest], 500):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, storage_ids=batch), limit=len(batch)
        ).records
        for record in records:
            metadata = record.asset_materialization.metadata
            received = metadata.get("records_received") or metadata.get("dagster/row_count")
            if received is None:
                continue
            read = metadata.get("extracted_at")
            extracted_at = (
                datetime.fromisoformat(read.value.replace("Z", "+00:00"))
                if read is not None
                else datetime.fromtimestamp(record.timestamp, UTC)
            )
            found.append(
                (date.fromisoformat(record.partition_key), int(received.value), extracted_at)
            )
    return found


def extraction_steps(
    instance: DagsterInstance, runs_per_source: int = RUNS_PER_SOURCE
) -> list["StepRun"]:
    """Each source's most recent extraction steps that succeeded: their duration (the step statistics),
    records and peak memory (the run's totals)."""
    from unified_assets.capacity import StepRun

    steps = []
    for source, key in RAW_EXTRACTS.items():
        table = key.path[-1]
        run_ids = _recent_runs_of(instance, key, runs_per_source)
        if not run_ids:  # RunsFilter takes an empty list of run ids for no filter at all
            continue
        for record in instance.get_run_records(RunsFilter(run_ids=run_ids)):
            tags = record.dagster_run.tags
            received = tags.get(run_total_tag(table, "records_received"))
            stats = instance.get_run_step_stats(
                record.dagster_run.run_id, [key.to_python_identifier()]
            )
            if received is None or not stats or not _succeeded(stats[0]):
                continue
            step = stats[0]
            memory = tags.get(run_total_tag(table, "peak_memory_mb"))
            steps.append(
                StepRun(
                    source=source,
                    run_id=record.dagster_run.run_id,
                    duration_s=step.end_time - step.start_time,
                    records=int(received),
                    peak_memory_mb=float(memory) if memory is not None else None,
                )
            )
    return steps


def _succeeded(step: "RunStepKeyStatsSnapshot") -> bool:
    return (
        step.status is not None and step.status.value == "SUCCESS"
    )  # StepEventStatus is not public


def _recent_runs_of(instance: DagsterInstance, key: AssetKey, count: int) -> list[str]:
    run_ids: list[str] = []
    for record in instance.fetch_materializations(key, limit=MATERIALIZATIONS_SCANNED).records:
        if record.run_id not in run_ids:
            run_ids.append(record.run_id)
        if len(run_ids) == count:
            break
    return run_ids


def _batches(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# ------------------------------------------------------------------------------ what the UI shows


def heavy_days_markdown(heavy: "pd.DataFrame") -> str:
    if heavy.empty:
        return "No day of the next 30 is forecast to be heavy: every run keeps its usual size."
    shown = heavy.assign(times_usual=heavy["q90"] / heavy["usual_records"])[
        [
            "day",
            "source",
            "q90",
            "usual_records",
            "times_usual",
            "window_slices",
            "duration_s",
            "peak_memory_mb",
        ]
    ]
    return markdown_table(_shown(shown))


def step_costs_markdown(costs: dict) -> str:
    rows = [
        {
            "source": cost.source,
            "steps learned from": cost.steps,
            "overhead (s)": round(cost.overhead_s, 2),
            "ms per record": round(cost.seconds_per_record * 1000, 3),
            "memory base (MB)": "-" if cost.memory_base_mb is None else round(cost.memory_base_mb),
            "memory per 1,000 records (MB)": round(cost.memory_per_record_mb * 1000, 2),
        }
        for cost in costs.values()
    ]
    return markdown_table(rows) if rows else "_no extraction step recorded yet_"


def records_plots(
    history: "pd.DataFrame", compared: "pd.DataFrame | None", forecast: "pd.DataFrame"
) -> MetadataValue:
    """Per source: the last days' records, the forecast made 30 days ago beside them (when the history
    could hold them out), and the next 30."""
    import pandas as pd

    from unified_assets.forecasting.plot import forecast_vs_actual_png

    images = []
    for source, days in history.groupby("source"):
        actual = days.set_index("day")["records"].sort_index().tail(PLOTTED_DAYS)
        lines = pd.concat(
            [
                *(
                    []
                    if compared is None
                    else [compared[compared["source"] == source].assign(origin="held out")]
                ),
                forecast[forecast["source"] == source].assign(origin="next"),
            ]
        ).rename(columns={"day": "period"})
        png = forecast_vs_actual_png(
            actual,
            lines,
            f"{source}: records a day, forecast vs actual and next 30 days",
            unit="records",
        )
        images.append(png_markdown(png, str(source)).value)
    return MetadataValue.md("\n\n".join(images))


def _shown(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Days with their weekday, records, seconds and MB as whole numbers, ratios to one decimal, and "-"
    for a figure not known yet (the duration of a source no step of which was recorded)."""
    import pandas as pd

    def cell(column: str, value) -> str:
        if pd.isna(value):
            return "-"
        if isinstance(value, pd.Timestamp):
            return f"{value:%Y-%m-%d (%a)}"
        if isinstance(value, float):
            return f"{value:,.1f}" if column == "times_usual" else f"{value:,.0f}"
        return str(value)

    return pd.DataFrame({column: [cell(column, v) for v in frame[column]] for column in frame})
