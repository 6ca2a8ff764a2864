"""The `ml` assets materialized in-process on the simulator's data: train, backtest, register, promote by
the rule, and forecast with the production model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context, materialize

from saas_simulator.clock import SimClock
from saas_simulator.faults import FaultPlan, FaultSpec
from saas_simulator.world import World
from unified_assets.defs.forecast import assets as forecast_module
from unified_assets.defs.forecast import sensors as forecast_sensors
from unified_assets.defs.forecast.assets import active_skus, demand_forecast, forecast_assets
from unified_assets.defs.forecast.demand_history import (
    DEMAND_TRAINING_SET,
    model_registry,
    read_weekly_demand,
)
from unified_assets.defs.forecast.sensors import demand_model_retraining
from unified_assets.defs.replenishment.assets import (
    RECOMMENDATIONS_TABLE,
    REPORT,
    SYNC,
    replenishment_assets,
)
from unified_assets.defs.sentiment import sensors as sentiment_sensors
from unified_assets.defs.sentiment.assets import (
    SENTIMENT_SYNC,
    OperationsLedger,
    support_ticket_sentiment_sync,
    ticket_sentiment,
)
from unified_assets.defs.sentiment.sensors import sentiment_model_retraining
from unified_assets.defs.sentiment.tickets import read_labelled_tickets
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.forecasting import selection
from unified_assets.lib.handoffs import DEMAND_FORECAST_TABLE, TICKET_SENTIMENT_TABLE
from unified_assets.lib.keys import DEMAND_FORECAST, DEMAND_FORECAST_MODEL, TICKET_SENTIMENT
from unified_assets.lib.storage import DATA_DIR_VAR, PlatformStorage
from unified_assets.retraining import REASON_TAG
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.resources import dbt_resources, source_resources
from unified_assets_tests.support.simulators import serving
from unified_assets_tests.support.warehouse import build_warehouse, copy_of_warehouse

AS_OF = datetime.fromisoformat("2026-07-27T06:00:00+00:00")  # 30 weeks of history
MODEL, FORECAST, TRAINING_SET = DEMAND_FORECAST_MODEL, DEMAND_FORECAST, DEMAND_TRAINING_SET
# The `ml` group's modelling assets: the forecast's three (training set, model, forecast) and sentiment.
ML_ASSETS = [*forecast_assets, ticket_sentiment]


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory, demo_config):
    """Seven months landed and built once for the module; each test gets its own copy."""
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    storage = PlatformStorage(data_dir=str(tmp_path_factory.mktemp("ml") / "data"))
    return build_warehouse(storage, world, "2026-01-01", "2026-07-26")


@pytest.fixture
def storage(built_warehouse, tmp_path) -> PlatformStorage:
    return copy_of_warehouse(built_warehouse, tmp_path)


@pytest.fixture(scope="module")
def after_first_run(built_warehouse, tmp_path_factory) -> PlatformStorage:
    """The module's warehouse after one ordinary run of the `ml` group (a production model, its
    forecast, the ticket sentiment), made once for the tests that start from a platform already
    running: each training costs seconds of CPU in a suite that waits on CPU."""
    storage = copy_of_warehouse(built_warehouse, tmp_path_factory.mktemp("ml_after_first_run"))
    assert run_ml(storage).success
    return storage


@pytest.fixture
def running(after_first_run, tmp_path) -> PlatformStorage:
    """A test's own copy of the data folder after the first run (its model registry included)."""
    return copy_of_warehouse(after_first_run, tmp_path)


def backtest_origins(origins: int) -> dict:
    """Run config for fewer backtest origins than the default three: less fitting in the suite. Two keep
    every code path of the backtest; one is enough where a test needs a model, not its evaluation."""
    return {"ops": {"ml__demand_forecast_model": {"config": {"backtest_cutoffs": origins}}}}


def run_ml(storage: PlatformStorage, origins: int = 1, **kwargs):
    return materialize(
        ML_ASSETS,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=backtest_origins(origins),
        resources={"storage": storage},
        **kwargs,
    )


def metadata(result, key: AssetKey) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_the_first_model_is_promoted_and_forecasts_every_active_sku(storage):
    result = run_ml(storage, origins=2)
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "promotable" and check.passed
    model = metadata(result, MODEL)
    assert model["promoted"] is True and "beats seasonal naive" in model["decision"]
    registry = model_registry(storage)
    production = registry.production()
    assert production.version == model["model_version"]
    card = production.card
    assert card["training_data"]["fingerprint"] == model["training_data_fingerprint"]
    naive = [m for m in card["backtest"] if (m["method"], m["cutoff"]) == ("seasonal_naive", "all")]
    assert card["method"] in selection.CHALLENGERS and card["metrics"]["wape"] < naive[0]["wape"]
    assert "open_order_quantity_due_week_1_lag_0" in card["features"]
    assert len(card["backtest_origins"]) == 2 and card["horizon"] == 4
    assert "| seasonal_naive |" in model["backtest"]
    assert model["backtest_plot"].startswith("![backtest](data:image/png;base64,")

    forecast = pd.DataFrame(
        duckdb.sql(f"select * from '{DEMAND_FORECAST_TABLE.location(storage)}'").df()
    )
    weekly = read_weekly_demand(storage)
    assert set(forecast["product_sku"]) == active_skus(weekly)
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
from unified_assets.defs.forecast.assets import demand_forecast_model
from unified_assets.lib.storage import PlatformStorage


def write_half_then_die(path, payload):
    with open(path, "wb") as handle:
        handle.write(payload[: len(payload) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.killpg(0, signal.SIGKILL)


model_registry.write_durably = write_half_then_die
materialize([demand_forecast_model], instance=DagsterInstance.ephemeral(),
            run_config=json.loads(sys.argv[1]),
            resources={"storage": PlatformStorage.from_environment()})
"""


def test_a_challenger_killed_while_written_or_no_better_leaves_the_champion_serving(running):
    storage = running
    registry = model_registry(storage)
    champion = registry.production_version()

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_WRITING_THE_MODEL, json.dumps(backtest_origins(1))],
        cwd=PROJECT_ROOT,
        env={**os.environ, DATA_DIR_VAR: str(storage.root)},  # the child's data folder: the test's
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    [scratch] = registry.store.folder.glob(".scratch-*")
    assert (scratch / "model.pkl").stat().st_size > 0, "the kill landed mid-write"
    assert registry.versions() == [champion]  # the half-written challenger is not a version
    assert registry.production().version == champion  # it loads: the artifact's hash is checked

    again = run_ml(storage)
    assert again.success  # a losing challenger warns; the forecast goes on with the champion
    [check] = again.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "WARN"
    assert "champion" in check.metadata["decision"].value
    assert registry.production_version() == champion
    assert len(registry.versions()) == 2
    assert not list(registry.store.folder.glob(".scratch-*")), "the killed writer's scratch"
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
    storage, monkeypatch
):
    monkeypatch.setattr(selection, "CHALLENGERS", {"demand_forecaster": Zeros})
    result = run_ml(storage)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "ERROR"
    assert "does not beat seasonal naive" in check.metadata["decision"].value
    assert FORECAST not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert model_registry(storage).production_version() is None
    assert not Path(DEMAND_FORECAST_TABLE.location(storage)).exists()


def test_forecasting_without_a_production_model_says_what_to_run(storage):
    result = materialize(
        [demand_forecast],
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        resources={"storage": storage},
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "materialize ml/demand_forecast_model first" in str(failure.event_specific_data.error)


def test_safety_stock_reaches_the_purchasing_system_once(running, demo_config):
    storage = running
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    with serving(world) as server:
        resources = {
            "storage": storage,
            "purchasing_api": source_resources(server, storage)["purchasing_api"],
        }
        first = materialize(
            replenishment_assets, instance=DagsterInstance.ephemeral(), resources=resources
        )
        written = server.items.updates()
        again = materialize(
            replenishment_assets, instance=DagsterInstance.ephemeral(), resources=resources
        )
        assert server.items.updates() == written  # nothing written twice
        table = duckdb.sql(f"select * from '{RECOMMENDATIONS_TABLE.location(storage)}'").df()
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


FAST_POLLS = {
    "ops": {"ml__support_ticket_sentiment_sync": {"config": {"job_poll_interval_s": 0.01}}}
}


def sync_sentiment(storage: PlatformStorage, server, **resource_overrides):
    return materialize(
        [support_ticket_sentiment_sync],
        instance=DagsterInstance.ephemeral(),
        resources={
            "storage": storage,
            "support_api": source_resources(server, storage, **resource_overrides)["support_api"],
        },
        run_config=FAST_POLLS,
        raise_on_error=False,
    )


def test_sentiment_reaches_the_support_system_once_and_only_what_changed_is_sent_again(
    storage, demo_config, tmp_path
):
    """Every scored ticket is sent in jobs of 100 and taken, or refused when closed; the values show
    on the tickets as Zendesk serves them; a re-run sends nothing; changed scores send only those."""
    assert materialize(
        [ticket_sentiment], instance=DagsterInstance.ephemeral(), resources={"storage": storage}
    ).success
    scored = TICKET_SENTIMENT_TABLE.read(storage)
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    with serving(world, state_dir=tmp_path / "simulator") as server:
        first = sync_sentiment(storage, server)
        assert first.success
        shown = metadata(first, SENTIMENT_SYNC)
        written = server.ticket_updates.writes()
        assert shown["tickets_written"] == len(written) > 100
        assert shown["tickets_refused"] > 0, "closed tickets are refused"
        assert shown["tickets_written"] + shown["tickets_refused"] == len(scored)
        sample = scored.sample(5, random_state=1)
        holding = server.ticket_updates.everything_written()
        for row in sample.itertuples():
            if int(row.ticket_id) in holding:
                fields = holding[int(row.ticket_id)]["custom_fields"]
                assert sorted(fields.values(), key=str) == sorted(
                    [f"predicted_{row.sentiment_label}", row.sentiment_score], key=str
                )

        again = sync_sentiment(storage, server)
        assert metadata(again, SENTIMENT_SYNC) == {
            **shown,
            "tickets_written": 0,
            "tickets_unchanged": shown["tickets_written"],
        }
        assert server.ticket_updates.writes() == written, "nothing written twice"

        taken = scored[scored["ticket_id"].astype(int).isin(list(holding))].head(7)
        assert len(taken) == 7
        changed = scored.copy()
        changed.loc[taken.index, "sentiment_score"] = (
            -changed.loc[taken.index, "sentiment_score"] - 0.5
        )
        TICKET_SENTIMENT_TABLE.write(storage, changed)
        third = sync_sentiment(storage, server)
        assert metadata(third, SENTIMENT_SYNC)["tickets_written"] == 7
        assert len(server.ticket_updates.writes()) == len(written) + 7


def test_a_sentiment_sync_that_fails_mid_way_resumes_its_job_and_writes_nothing_twice(
    storage, demo_config, tmp_path
):
    """The status polls of the first job fail (HTTP 500 until the retries run out): the run fails with
    its job submitted and unseen. The next run asks Zendesk how that job ended, records it, and sends
    only the rest: every ticket is written once."""
    assert materialize(
        [ticket_sentiment], instance=DagsterInstance.ephemeral(), resources={"storage": storage}
    ).success
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    state = tmp_path / "simulator"
    polls_fail = FaultPlan(
        (FaultSpec("server_error", systems=("support",), at_requests=tuple(range(2, 30))),)
    )
    with serving(world, faults=polls_fail, state_dir=state) as server:
        failed = sync_sentiment(storage, server, max_retries=1)
    assert not failed.success
    ledger = OperationsLedger(storage).read()
    assert set(ledger["state"]) == {"pending"} and ledger["job_id"].nunique() == 1

    with serving(world, state_dir=state) as server:
        resumed = sync_sentiment(storage, server)
        writes = server.ticket_updates.writes()
    assert resumed.success
    shown = metadata(resumed, SENTIMENT_SYNC)
    assert shown["jobs_resumed"] == 1
    assert len(writes) == shown["tickets_written"]
    assert len({w["ticket_id"] for w in writes}) == len(writes), "a ticket written twice"
    assert set(OperationsLedger(storage).read()["state"]) == {"written", "refused"}


def test_every_ticket_gets_a_sentiment_from_the_model_with_the_better_f1(storage):
    result = materialize(
        [ticket_sentiment], instance=DagsterInstance.ephemeral(), resources={"storage": storage}
    )
    shown = metadata(result, TICKET_SENTIMENT)
    scored = duckdb.sql(f"select * from '{TICKET_SENTIMENT_TABLE.location(storage)}'").df()
    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        [(tickets,)] = con.execute(
            "select count(*) from staging.stg_support__tickets where not is_deleted"
        ).fetchall()
    assert len(scored) == tickets == shown["dagster/row_count"]
    assert (scored["model_version"] == shown["model_version"]).all()
    assert set(scored["sentiment_label"]) <= {"negative", "neutral", "positive"}
    assert "| tfidf_logistic_regression |" in shown["f1_macro"]
    assert shown["labelled_tickets"] > 100


def product_sentiment(storage) -> pd.Series:
    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        return (
            con.execute(
                "select customer_id, product_sku, avg_product_sentiment from marts.unified_demand"
            )
            .df()
            .set_index(["customer_id", "product_sku"])["avg_product_sentiment"]
        )


def test_the_sentiment_scores_feed_the_unified_demand_mart(storage):
    """Before any scoring the mart builds with sentiment null; after, each customer x SKU carries the
    mean model score of its tickets, built downstream of ml/ticket_sentiment in one run."""
    assert product_sentiment(storage).isna().all()
    marts = [
        AssetKey(["staging", "stg_ml__ticket_sentiment"]),
        AssetKey(["marts", "unified_demand"]),
    ]
    result = materialize(
        [dbt_models, ticket_sentiment],
        selection=[TICKET_SENTIMENT, *marts],
        resources=dbt_resources(storage),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    scores = duckdb.sql(f"select * from '{TICKET_SENTIMENT_TABLE.location(storage)}'").df()
    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        mentions = con.execute(
            "select ticket_id, customer_id, product_sku from intermediate.int_ticket_mentions"
        ).df()
    expected = (
        mentions.merge(scores, on="ticket_id")
        .groupby(["customer_id", "product_sku"])["sentiment_score"]
        .mean()
    )
    shown = product_sentiment(storage).dropna()
    assert len(shown) == len(expected) > 50
    np.testing.assert_allclose(shown.sort_index(), expected.sort_index())
    assert shown.between(-1, 1).all()


def evaluate(storage: PlatformStorage, sensor_def, cursor=None):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=Definitions(
                assets=ML_ASSETS, sensors=[sensor_def], resources={"storage": storage}
            ),
            resources={"storage": storage},  # what the sensor itself is given
        )
        return sensor_def.evaluate_tick(context)


def test_the_retraining_sensor_skips_until_new_weeks_arrive_then_asks_once(storage, monkeypatch):
    assert "no production demand model" in evaluate(storage, demand_model_retraining).skip_message
    full = read_weekly_demand(storage)
    last_weeks = sorted(full["period"].unique())[-3:]
    earlier = full[~full["period"].isin(last_weeks)]
    monkeypatch.setattr(forecast_module, "read_weekly_demand", lambda storage: earlier)
    monkeypatch.setattr(forecast_sensors, "read_weekly_demand", lambda storage: earlier)
    assert run_ml(storage, selection=[TRAINING_SET, MODEL]).success  # trained three weeks ago
    unchanged = evaluate(storage, demand_model_retraining)
    assert "no complete period since" in unchanged.skip_message
    again = evaluate(storage, demand_model_retraining, cursor=unchanged.cursor)
    assert "no new complete week since" in again.skip_message

    monkeypatch.setattr(forecast_module, "read_weekly_demand", lambda storage: full)
    monkeypatch.setattr(forecast_sensors, "read_weekly_demand", lambda storage: full)
    fresh = evaluate(storage, demand_model_retraining)
    [request] = fresh.run_requests  # three new weeks are 10% more rows, whatever the accuracy
    assert request.run_key.startswith(model_registry(storage).production_version())
    assert request.run_key == evaluate(storage, demand_model_retraining).run_requests[0].run_key

    surge = full.assign(y=full["y"].where(~full["period"].isin(last_weeks), full["y"] * 4))
    monkeypatch.setattr(forecast_sensors, "read_weekly_demand", lambda storage: surge)
    [degraded] = evaluate(storage, demand_model_retraining).run_requests
    assert "realized WAPE above 1.2 x backtest" in degraded.tags[REASON_TAG]


def test_the_retraining_sensor_says_when_the_warehouse_cannot_be_read(storage):
    assert run_ml(storage, selection=[TRAINING_SET, MODEL]).success
    storage.warehouse_path.unlink()
    assert (
        "cannot read the weekly demand now"
        in evaluate(storage, demand_model_retraining).skip_message
    )


def test_the_sentiment_sensor_retrains_when_new_labels_disagree(storage, monkeypatch):
    assert (
        "no production sentiment model"
        in evaluate(storage, sentiment_model_retraining).skip_message
    )
    materialize(
        [ticket_sentiment], instance=DagsterInstance.ephemeral(), resources={"storage": storage}
    )
    assert "0 newly labelled tickets" in evaluate(storage, sentiment_model_retraining).skip_message
    labelled = read_labelled_tickets(storage)
    flipped = labelled.head(60).assign(
        agent_sentiment=labelled["agent_sentiment"]
        .head(60)
        .map({"positive": "negative", "negative": "positive", "neutral": "negative"})
    )
    monkeypatch.setattr(sentiment_sensors, "read_labelled_tickets", lambda storage, since: flipped)
    [request] = evaluate(storage, sentiment_model_retraining).run_requests
    assert "below 0.82" in request.tags[REASON_TAG]
