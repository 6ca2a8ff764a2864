"""The sensor that evaluates every asset's automation condition (`lib/automation.py`), on by default so
the platform runs by itself from the first `dagster dev`."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

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
