"""Gathers the platform's assets and resources for Dagster; nothing is defined here."""

from dagster import Definitions, multiprocess_executor

from unified_assets.assets.ml import ml_assets
from unified_assets.assets.operations import operations_assets
from unified_assets.assets.raw import raw_assets
from unified_assets.assets.replenishment import replenishment_assets
from unified_assets.assets.transform import dbt_cli, dbt_models
from unified_assets.checks.raw_extract import raw_extract_checks
from unified_assets.resources import AccountingApi, AlertSink, PurchasingApi, SupportApi
from unified_assets.schedules import jobs, schedules
from unified_assets.sensors.alerts import alert_sensors
from unified_assets.sensors.automation import automation
from unified_assets.sensors.business_events import business_event_sensors
from unified_assets.sensors.new_data import new_source_data
from unified_assets.sensors.retraining import retraining_sensors

defs = Definitions(
    assets=[*raw_assets, dbt_models, *ml_assets, *replenishment_assets, *operations_assets],
    asset_checks=raw_extract_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=[
        automation,
        new_source_data,
        *business_event_sensors,
        *retraining_sensors,
        *alert_sensors,
    ],
    resources={
        "accounting_api": AccountingApi.from_environment(),
        "purchasing_api": PurchasingApi.from_environment(),
        "support_api": SupportApi.from_environment(),
        "dbt": dbt_cli(),
        "alert_sink": AlertSink.from_environment(),
    },
    # Dagster's default is one step per core; extracts wait on the network, so run more at once.
    executor=multiprocess_executor.configured({"max_concurrent": 4}),
)
