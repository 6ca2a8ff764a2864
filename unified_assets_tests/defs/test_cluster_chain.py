"""The `cluster` profile end to end: raw extraction, dbt on DuckLake, ticket sentiment, the demand model and
its forecast, each step on a "host" of its own (a fresh, empty working folder) that shares nothing with the
others but the Postgres database and the bucket, as pods of a Kubernetes deployment would."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from pathlib import Path

from dagster import AssetsDefinition, DagsterInstance, materialize

from saas_simulator.clock import SimClock
from saas_simulator.world import World
from unified_assets.defs.forecast.assets import (
    demand_forecast,
    demand_forecast_model,
    demand_training_set,
)
from unified_assets.defs.forecast.demand_history import model_registry
from unified_assets.defs.sentiment.assets import ticket_sentiment
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.lib.handoffs import DEMAND_FORECAST_TABLE, TICKET_SENTIMENT_TABLE
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.resources import dbt_resources
from unified_assets_tests.support.services import cluster_storage
from unified_assets_tests.support.simulators import serving
from unified_assets_tests.support.warehouse import land_days

AS_OF = datetime.fromisoformat("2026-07-27T06:00:00+00:00")
FIRST_DAY, LAST_DAY = (
    "2026-01-01",
    "2026-07-26",
)  # 30 weeks: enough for a first model to be promoted
ONE_ORIGIN = {"ops": {"ml__demand_forecast_model": {"config": {"backtest_cutoffs": 1}}}}
# What the local profile keeps in its data folder, and the cluster profile must not.
SHARED_STATE = {"lake", "ml", "models", "operations", "warehouse.duckdb", "locks"}


def run_alone(asset: AssetsDefinition, storage: PlatformStorage, **kwargs) -> None:
    result = materialize(
        [asset],
        instance=DagsterInstance.ephemeral(),
        resources={"storage": storage},
        **kwargs,
    )
    assert result.success, asset.key


def test_raw_to_forecast_runs_with_every_step_in_an_empty_folder_sharing_only_postgres_and_the_bucket(
    demo_config, tmp_path: Path, postgres_database, s3_server
):
    bucket_url = f"s3://{s3_server.create_bucket()}/unified_assets"
    hosts = count(1)
    folders: list[Path] = []

    def new_host() -> PlatformStorage:
        folders.append(tmp_path / f"host-{next(hosts)}")
        return cluster_storage(folders[-1], postgres_database, s3_server, bucket_url=bucket_url)

    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    with serving(world) as server:
        land_days(server, new_host(), FIRST_DAY, LAST_DAY)
    assert materialize([dbt_models], resources=dbt_resources(new_host())).success
    run_alone(ticket_sentiment, new_host())
    run_alone(demand_training_set, new_host())
    run_alone(demand_forecast_model, new_host(), run_config=ONE_ORIGIN)
    run_alone(demand_forecast, new_host())

    reader = new_host()
    forecast = DEMAND_FORECAST_TABLE.read(reader)
    production = model_registry(reader).production()
    assert production is not None and set(forecast["model_version"]) == {production.version}
    assert len(TICKET_SENTIMENT_TABLE.read(reader)) > 0
    assert DEMAND_FORECAST_TABLE.location(reader).startswith(bucket_url + "/ml/")

    for folder in folders:  # each host kept only its scratch space
        left = {path.name for path in folder.iterdir()} if folder.exists() else set()
        assert not left & SHARED_STATE, f"{folder.name} kept {sorted(left & SHARED_STATE)}"
