"""The platform's clock: yesterday's extracts every night, and support tickets every quarter hour.

Schedules start only the extracts. Everything downstream (the dbt models, ticket sentiment, the forecast,
safety stock) follows by declarative automation (`lib/automation.py`), so a schedule never has to know
the graph below it, and a blocking check that fails in the extract stops the rest exactly as it would in a
run launched by hand.
"""

from datetime import timedelta

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

    def daily_pipeline(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        """The day that has just ended is extracted once more, whole: records changed late in the day
        after an earlier run are picked up, and the partition is final."""
        day = (context.scheduled_execution_time - timedelta(days=1)).date()
        if day < settings.history_start():
            return SkipReason(
                f"{day} is before the first day of history ({settings.history_start()}, "
                f"{settings.HISTORY_START_VAR}): nothing to extract"
            )
        return RunRequest(
            run_key=f"daily:{day}", partition_key=day.isoformat(), tags={"trigger": "schedule"}
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


daily_pipeline = daily_pipeline_schedule()
