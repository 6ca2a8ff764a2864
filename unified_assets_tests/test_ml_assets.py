"""The `ml` assets materialized in-process on the simulator's data: train, backtest, register, promote by
the rule, and forecast with the production model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context, materialize

from unified_assets.assets import ml
from unified_assets.assets.replenishment import (
    REPORT,
    SYNC,
    recommendations_path,
    replenishment_assets,
)
from unified_assets.assets.transform import dbt_cli, dbt_models
from unified_assets.sensors import retraining as retraining_sensors
from unified_assets.sensors.retraining import (
    REASON_TAG,
    demand_model_retraining,
    sentiment_model_retraining,
)
from unified_assets.settings import PROJECT_ROOT
from unified_assets.simulator import SimClock, World
from unified_assets_tests.conftest import (
    build_warehouse,
    copy_of_warehouse,
    serving,
    source_resources,
)

AS_OF = datetime.fromisoformat("2026-07-27T06:00:00+00:00")  # 30 weeks of history
MODEL, FORECAST = ml.FORECAST_MODEL, ml.FORECAST


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory, demo_config):
    """Seven months landed and built once for the module; each test gets its own copy."""
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    return build_warehouse(
        tmp_path_factory.mktemp("ml") / "data", world, "2026-01-01", "2026-07-26"
    )


@pytest.fixture
def data_dir(built_warehouse, tmp_path, monkeypatch):
    return copy_of_warehouse(built_warehouse, tmp_path, monkeypatch)


# Two backtest origins instead of three: the same code paths, a third less fitting in the suite.
QUICK = {"ops": {"ml__demand_forecast_model": {"config": {"backtest_cutoffs": 2}}}}


def run_ml(**kwargs):
    return materialize(
        ml.ml_assets,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUICK,
        **kwargs,
    )


def metadata(result, key: AssetKey) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_the_first_model_is_promoted_and_forecasts_every_active_sku(data_dir):
    result = run_ml()
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "promotable" and check.passed
    model = metadata(result, MODEL)
    assert model["promoted"] is True and "beats seasonal naive" in model["decision"]
    registry = ml.model_registry()
    production = registry.production()
    assert production.version == model["model_version"]
    card = production.card
    assert card["training_data"]["fingerprint"] == model["training_data_fingerprint"]
    naive = [m for m in card["backtest"] if (m["method"], m["cutoff"]) == ("seasonal_naive", "all")]
    assert card["method"] in ml.CHALLENGERS and card["metrics"]["wape"] < naive[0]["wape"]
    assert "open_order_quantity_due_week_1_lag_0" in card["features"]
    assert len(card["backtest_origins"]) == 2 and card["horizon"] == 4
    assert "| seasonal_naive |" in model["backtest"]
    assert model["backtest_plot"].startswith("![backtest](data:image/png;base64,")

    forecast = pd.DataFrame(duckdb.sql(f"select * from '{ml.forecast_path()}'").df())
    weekly = ml.read_weekly_demand()
    assert set(forecast["product_sku"]) == ml.active_skus(weekly)
    assert forecast.groupby("product_sku").size().eq(4).all()
    assert (forecast["model_version"] == production.version).all()
    values = forecast[["q50", "q90", "q95"]].to_numpy()
    assert (values >= 0).all() and (np.diff(values, axis=1) >= 0).all()
    first_week = pd.Timestamp(weekly["period"].max()) + pd.Timedelta(weeks=1)
    assert forecast["week_start"].min() == first_week
    shown = metadata(result, FORECAST)
    assert shown["model_version"] == production.version
    assert shown["dagster/row_count"] == len(forecast)
    assert shown["forecast_plot"].startswith("![forecast](data:image/png;base64,")


# A model run in a child process, killed (SIGKILL, as the OOM killer would) half way through writing its
# artifact into the registry. The fault is patched into the child only: nothing in the package knows.
KILLED_WHILE_WRITING_THE_MODEL = r"""
import json, os, signal, sys

from dagster import DagsterInstance, materialize

import unified_assets.model_registry as model_registry
from unified_assets.assets import ml


def write_half_then_die(path, payload):
    with open(path, "wb") as handle:
        handle.write(payload[: len(payload) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.killpg(0, signal.SIGKILL)


model_registry.write_durably = write_half_then_die
materialize([ml.demand_forecast_model], instance=DagsterInstance.ephemeral(),
            run_config=json.loads(sys.argv[1]))
"""


def test_a_challenger_killed_while_written_or_no_better_leaves_the_champion_serving(data_dir):
    assert run_ml().success
    registry = ml.model_registry()
    champion = registry.production_version()

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_WRITING_THE_MODEL, json.dumps(QUICK)],
        cwd=PROJECT_ROOT,
        env=os.environ,  # the test's data folder
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    [scratch] = registry.versions_dir.glob(".scratch-*")
    assert (scratch / "model.pkl").stat().st_size > 0, "the kill landed mid-write"
    assert registry.versions() == [champion]  # the half-written challenger is not a version
    assert registry.production().version == champion  # it loads: the artifact's hash is checked

    again = run_ml()
    assert again.success  # a losing challenger warns; the forecast goes on with the champion
    [check] = again.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "WARN"
    assert "champion" in check.metadata["decision"].value
    assert registry.production_version() == champion
    assert len(registry.versions()) == 2
    assert not list(registry.versions_dir.glob(".scratch-*")), "the killed writer's scratch"
    assert metadata(again, FORECAST)["model_version"] == champion


class Zeros:
    """A challenger that forecasts nothing: it must never reach production."""

    name = "demand_forecaster"

    def __init__(self, horizon, quantiles):
        self.horizon, self.quantiles = horizon, quantiles

    def fit(self, panel):
        self.panel = panel
        return self

    def predict(self, history=None):
        panel = self.panel if history is None else history
        periods = panel.periods_after(panel.last_period, self.horizon)
        ids = panel.frame["series_id"].unique()
        index = pd.MultiIndex.from_product([ids, periods], names=["series_id", "period"])
        return pd.DataFrame(index=index).reset_index().assign(mean=0.0, q50=0.0, q90=0.0, q95=0.0)


def test_a_first_model_worse_than_seasonal_naive_stops_the_run_before_the_forecast(
    data_dir, monkeypatch
):
    monkeypatch.setattr(ml, "CHALLENGERS", {"demand_forecaster": Zeros})
    result = run_ml()
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "ERROR"
    assert "does not beat seasonal naive" in check.metadata["decision"].value
    assert FORECAST not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert ml.model_registry().production_version() is None
    assert not ml.forecast_path().exists()


def test_forecasting_without_a_production_model_says_what_to_run(data_dir):
    result = materialize(
        [ml.demand_forecast], instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "materialize ml/demand_forecast_model first" in str(failure.event_specific_data.error)


def test_safety_stock_reaches_the_purchasing_system_once(data_dir, demo_config):
    assert run_ml().success
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    with serving(world) as server:
        resources = {"purchasing_api": source_resources(server)["purchasing_api"]}
        first = materialize(
            replenishment_assets, instance=DagsterInstance.ephemeral(), resources=resources
        )
        written = server.items.updates()
        again = materialize(
            replenishment_assets, instance=DagsterInstance.ephemeral(), resources=resources
        )
        assert server.items.updates() == written  # nothing written twice
        table = duckdb.sql(f"select * from '{recommendations_path()}'").df()
        for row in table.itertuples():
            assert server.items.custom_fields(int(row.purchasing_item_id)) == {
                "safety-stock": row.safety_stock,
                "reorder-point": row.reorder_point,
            }
    assert first.success and again.success
    assert len(written) == len(table) > 40
    assert metadata(first, SYNC)["items_updated"] == len(table)
    assert metadata(again, SYNC) == {
        "items_updated": 0,
        "items_unchanged": len(table),
        "items": len(table),
    }
    assert (table["reorder_point"] >= table["demand_over_lead_time"]).all()
    assert (table["safety_stock"] > 0).all()
    report = metadata(first, REPORT)
    assert report["report"].startswith(f"**{report['skus_at_risk']} of {len(table)} SKUs**")


def test_every_ticket_gets_a_sentiment_from_the_model_with_the_better_f1(data_dir):
    result = materialize([ml.ticket_sentiment], instance=DagsterInstance.ephemeral())
    shown = metadata(result, ml.SENTIMENT)
    scored = duckdb.sql(f"select * from '{ml.sentiment_path()}'").df()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        [(tickets,)] = con.execute(
            "select count(*) from staging.stg_support__tickets where not is_deleted"
        ).fetchall()
    assert len(scored) == tickets == shown["dagster/row_count"]
    assert (scored["model_version"] == shown["model_version"]).all()
    assert set(scored["sentiment_label"]) <= {"negative", "neutral", "positive"}
    assert "| tfidf_logistic_regression |" in shown["f1_macro"]
    assert shown["labelled_tickets"] > 100


def product_sentiment(data_dir) -> pd.Series:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return (
            con.execute(
                "select customer_id, product_sku, avg_product_sentiment from marts.unified_demand"
            )
            .df()
            .set_index(["customer_id", "product_sku"])["avg_product_sentiment"]
        )


def test_the_sentiment_scores_feed_the_unified_demand_mart(data_dir):
    """Before any scoring the mart builds with sentiment null; after, each customer x SKU carries the
    mean model score of its tickets, built downstream of ml/ticket_sentiment in one run."""
    assert product_sentiment(data_dir).isna().all()
    marts = [
        AssetKey(["staging", "stg_ml__ticket_sentiment"]),
        AssetKey(["marts", "unified_demand"]),
    ]
    result = materialize(
        [dbt_models, ml.ticket_sentiment],
        selection=[ml.SENTIMENT, *marts],
        resources={"dbt": dbt_cli()},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    scores = duckdb.sql(f"select * from '{ml.sentiment_path()}'").df()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        mentions = con.execute(
            "select ticket_id, customer_id, product_sku from intermediate.int_ticket_mentions"
        ).df()
    expected = (
        mentions.merge(scores, on="ticket_id")
        .groupby(["customer_id", "product_sku"])["sentiment_score"]
        .mean()
    )
    shown = product_sentiment(data_dir).dropna()
    assert len(shown) == len(expected) > 50
    np.testing.assert_allclose(shown.sort_index(), expected.sort_index())
    assert shown.between(-1, 1).all()


def evaluate(sensor_def, cursor=None):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=Definitions(assets=ml.ml_assets, sensors=[sensor_def]),
        )
        return sensor_def.evaluate_tick(context)


def test_the_retraining_sensor_skips_until_new_weeks_arrive_then_asks_once(data_dir, monkeypatch):
    assert "no production demand model" in evaluate(demand_model_retraining).skip_message
    full = ml.read_weekly_demand()
    last_weeks = sorted(full["period"].unique())[-3:]
    earlier = full[~full["period"].isin(last_weeks)]
    monkeypatch.setattr(ml, "read_weekly_demand", lambda: earlier)
    monkeypatch.setattr(retraining_sensors, "read_weekly_demand", lambda: earlier)
    assert run_ml(selection=[MODEL]).success  # trained three weeks ago
    unchanged = evaluate(demand_model_retraining)
    assert "no complete period since" in unchanged.skip_message
    again = evaluate(demand_model_retraining, cursor=unchanged.cursor)
    assert "no new complete week since" in again.skip_message

    monkeypatch.setattr(ml, "read_weekly_demand", lambda: full)
    monkeypatch.setattr(retraining_sensors, "read_weekly_demand", lambda: full)
    fresh = evaluate(demand_model_retraining)
    [request] = fresh.run_requests  # three new weeks are 10% more rows, whatever the accuracy
    assert request.run_key.startswith(ml.model_registry().production_version())
    assert request.run_key == evaluate(demand_model_retraining).run_requests[0].run_key

    surge = full.assign(y=full["y"].where(~full["period"].isin(last_weeks), full["y"] * 4))
    monkeypatch.setattr(retraining_sensors, "read_weekly_demand", lambda: surge)
    [degraded] = evaluate(demand_model_retraining).run_requests
    assert "realized WAPE above 1.2 x backtest" in degraded.tags[REASON_TAG]


def test_the_retraining_sensor_says_when_the_warehouse_cannot_be_read(data_dir):
    assert run_ml(selection=[MODEL]).success
    (data_dir / "warehouse.duckdb").unlink()
    assert "cannot read the weekly demand now" in evaluate(demand_model_retraining).skip_message


def test_the_sentiment_sensor_retrains_when_new_labels_disagree(data_dir, monkeypatch):
    assert "no production sentiment model" in evaluate(sentiment_model_retraining).skip_message
    materialize([ml.ticket_sentiment], instance=DagsterInstance.ephemeral())
    assert "0 newly labelled tickets" in evaluate(sentiment_model_retraining).skip_message
    labelled = ml.read_labelled_tickets()
    flipped = labelled.head(60).assign(
        agent_sentiment=labelled["agent_sentiment"]
        .head(60)
        .map({"positive": "negative", "negative": "positive", "neutral": "negative"})
    )
    monkeypatch.setattr(retraining_sensors, "read_labelled_tickets", lambda since: flipped)
    [request] = evaluate(sentiment_model_retraining).run_requests
    assert "below 0.82" in request.tags[REASON_TAG]
