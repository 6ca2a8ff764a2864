"""The platform's clock: yesterday's extracts every night, and support tickets every quarter hour.

Schedules start only the extracts. Everything downstream (the dbt models, ticket sentiment, the forecast,
safety stock) follows by declarative automation (`lib/automation.py`), so a schedule never has to know
the graph below it, and a blocking check that fails in the extract stops the rest exactly as it would in a
run launched by hand.
"""

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    DagsterInvalidDefinitionError,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from unified_assets import settings
from unified_assets.defs.ingestion.assets import RAW_SOURCES
from unified_assets.lib.handoffs import CAPACITY_PLAN_TABLE
from unified_assets.lib.pod_resources import PLANNED_MEMORY_TAG
from unified_assets.lib.source_apis import USUAL_WINDOW_SLICES
from unified_assets.lib.storage import PlatformStorage

if TYPE_CHECKING:
    from unified_assets.capacity import RunSizing

CAPACITY_TAG = "unified_assets/capacity"

RAW_KEYS = [source.key for source in RAW_SOURCES]
RAW_TICKETS = next(source.key for source in RAW_SOURCES if source.table == "support_tickets")

daily_extracts = define_asset_job(
    "daily_extracts",
    selection=AssetSelection.assets(*RAW_KEYS),
    description="Every source's records last updated on one day (all three raw extracts).",
)
ticket_extract = define_asset_job(
    "ticket_extract",
    selection=AssetSelection.assets(RAW_TICKETS),
    description="Support tickets updated today so far.",
)


def daily_pipeline_schedule() -> ScheduleDefinition:
    cron = settings.daily_pipeline_cron()

    def daily_pipeline(
        context: ScheduleEvaluationContext, storage: PlatformStorage
    ) -> RunRequest | SkipReason:
        """The day that has just ended is extracted once more, whole: records changed late in the day
        after an earlier run are picked up, and the partition is final. A day the capacity plan
        forecasts to be heavy gets a run sized for it."""
        day = (context.scheduled_execution_time - timedelta(days=1)).date()
        if day < settings.history_start():
            return SkipReason(
                f"{day} is before the first day of history ({settings.history_start()}, "
                f"{settings.HISTORY_START_VAR}): nothing to extract"
            )
        sizing = planned_sizing(storage, day, context.log)
        return RunRequest(
            run_key=f"daily:{day}",
            partition_key=day.isoformat(),
            tags={"trigger": "schedule", **sizing_tags(sizing)},
            run_config=sizing_run_config(sizing),
        )

    try:
        return schedule(
            name="daily_pipeline",
            job=daily_extracts,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=DefaultScheduleStatus.RUNNING,
            description=(
                f"At {cron} (UTC): yesterday's records from all three systems; the dbt models, "
                "sentiment, forecast and safety stock follow by automation."
            ),
        )(daily_pipeline)
    except DagsterInvalidDefinitionError:
        raise settings.SettingError(
            f"{settings.DAILY_PIPELINE_CRON_VAR}={cron!r} is not a valid cron expression; "
            f"e.g. {settings.DEFAULT_DAILY_PIPELINE_CRON!r} for 02:00 UTC every day"
        ) from None


@schedule(
    job=ticket_extract,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        "Every 15 minutes: today's new and updated support tickets; the ticket models, sentiment "
        "scores and the marts that use them follow by automation."
    ),
)
def ticket_and_sentiment_refresh(context: ScheduleEvaluationContext) -> RunRequest:
    moment = context.scheduled_execution_time
    return RunRequest(
        run_key=f"tickets:{moment.isoformat()}",
        partition_key=moment.date().isoformat(),
        tags={"trigger": "schedule"},
    )


# ------------------------------------------------------------------------------ sizing a heavy day


def planned_sizing(storage: PlatformStorage, day: date, log: logging.Logger) -> "RunSizing | None":
    """What the capacity plan asks of `day`'s run: None for an ordinary day, and when there is no plan
    or it cannot be read (the night's extraction runs at its usual size rather than not at all)."""
    from unified_assets.capacity import sizing_for

    location = CAPACITY_PLAN_TABLE.location(storage)
    if not storage.handoff_place().exists(location):
        return None
    try:
        plan = CAPACITY_PLAN_TABLE.read(storage)
    except Exception as error:  # whatever made it unreadable, the night's run must still start
        log.warning(f"capacity plan {location} unreadable ({error}); the run keeps its usual size")
        return None
    return sizing_for(plan, day)


def sizing_run_config(sizing: "RunSizing | None") -> dict:
    """Each heavy source's connection reads the day's window in the slices the plan gives it, more than
    on a usual night (`SourceApi.window_slices`)."""
    if sizing is None:
        return {}
    resource_keys = {source.system: source.resource_key for source in RAW_SOURCES}
    return {
        "resources": {
            resource_keys[system]: {"config": {"window_slices": slices}}
            for system, slices in sizing.window_slices.items()
            if slices > USUAL_WINDOW_SLICES[system]
        }
    }


def sizing_tags(sizing: "RunSizing | None") -> dict[str, str]:
    """Why the run is sized (shown on the run), and the memory its pod should have at least, which the
    platform's Kubernetes run launcher reads (`lib/k8s_run_launcher.py`; inert elsewhere)."""
    if sizing is None:
        return {}
    tags = {CAPACITY_TAG: f"heavy day: {sizing.reason}"}
    if sizing.memory_request_mb is not None:
        tags[PLANNED_MEMORY_TAG] = f"{sizing.memory_request_mb}Mi"
    return tags


daily_pipeline = daily_pipeline_schedule()
