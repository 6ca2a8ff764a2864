"""The sensor that evaluates every asset's automation condition (`lib/automation.py`), on by default so
the platform runs by itself from the first `dagster dev`, and the retention of what it records."""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

automation = AutomationConditionSensorDefinition(
    "automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Rebuilds the dbt models, sentiment, forecast and safety stock when what they read changes, "
        "never past a failed blocking check."
    ),
)

# The automation records, per asset and tick, why it did or did not request a run: about 27 KB a record
# here, up to 4 MB a minute in the first hour of `dagster dev`. Dagster keeps them 30 days and no instance
# setting changes that (docs/benchmarks.md, section 7, has the measurement); an hour is what a laptop needs
# to see why something ran.
EVALUATIONS_KEPT = timedelta(hours=1)


def purge_old_automation_evaluations(instance: DagsterInstance, now: datetime) -> datetime:
    """Delete the automation's evaluations recorded before `now - EVALUATIONS_KEPT`; returns that time."""
    cutoff = now - EVALUATIONS_KEPT
    storage = instance.schedule_storage
    if storage is not None and storage.supports_auto_materialize_asset_evaluations:
        storage.purge_asset_evaluations(before=cutoff.timestamp())
    return cutoff


@sensor(
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15 * 60,
    description=(
        "Keeps the automation's per-asset evaluations (*Automation* -> `automation`) for the last "
        f"{EVALUATIONS_KEPT.total_seconds() / 60:.0f} minutes, purging every 15, so the instance stays "
        "bounded on a laptop (Dagster's own purge keeps them 30 days). Starts no runs."
    ),
)
def automation_history_retention(context: SensorEvaluationContext) -> SkipReason:
    cutoff = purge_old_automation_evaluations(context.instance, datetime.now(UTC))
    return SkipReason(
        f"removed the automation's evaluations from before {cutoff:%Y-%m-%d %H:%M} UTC"
    )
