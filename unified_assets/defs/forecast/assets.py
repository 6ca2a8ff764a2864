"""The demand forecast: a model trained, backtested against the baselines and the production model,
registered and promoted only when better; and the forecast the production model makes.

What reads the warehouse is in the warehouse pool (DuckDB lets no reader in while dbt writes): the
training set, a copy of the weekly history, and the forecast. The model trains on the copy, outside the
pool, so a training of minutes does not hold dbt and the other readers back. Nothing is handed over in
memory: the training set is a Parquet file, the model goes through the registry, the forecast to a
Parquet file the replenishment domain reads (`lib/handoffs.py`).

pandas and the forecasting library (scikit-learn) are imported by the functions that use them: every run
worker and step process loads this module, and most of them never train or forecast.
"""

from datetime import timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from unified_assets.defs.forecast.demand_history import (
    DEMAND_SIGNALS,
    DEMAND_TRAINING_SET,
    QUANTILES,
    TRAINING_SET_TABLE,
    WEEKLY_DEMAND,
    model_registry,
    read_weekly_demand,
    weekly_demand_panel,
)
from unified_assets.lib.automation import rebuild_when_upstream_changes
from unified_assets.lib.handoffs import DEMAND_FORECAST_TABLE
from unified_assets.lib.keys import DEMAND_FORECAST, DEMAND_FORECAST_MODEL, DEMAND_PLANNING
from unified_assets.lib.metadata import frame_schema, markdown_table, png_markdown
from unified_assets.lib.pod_resources import pod_resources
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL

if TYPE_CHECKING:
    import pandas as pd

    from unified_assets.forecasting import BacktestReport, Panel

ACTIVE_WEEKS = 26  # a SKU with no demand and no open orders for this long is not forecast


class DemandForecastConfig(Config):
    horizon_weeks: int = Field(
        default=4,
        ge=1,
        le=26,
        description="Weeks ahead to forecast; four covers the longest supplier lead time (three weeks).",
    )
    backtest_cutoffs: int = Field(
        default=3, ge=1, le=12, description="Rolling origins the backtest scores each method on."
    )


def frozen(model, name: str = "production_model"):
    """A backtest method that scores each window with an already-fitted model, never refitting it."""

    class Frozen:
        def __init__(self, horizon: int, quantiles: tuple[float, ...]):
            self.name = name

        def fit(self, panel: "Panel"):
            self._panel = panel
            return self

        def predict(self):
            return model.predict(self._panel)

    return Frozen


@asset(
    key=DEMAND_TRAINING_SET,
    deps=[WEEKLY_DEMAND],
    automation_condition=rebuild_when_upstream_changes(),
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "duckdb", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "The complete weeks of marts/sku_demand_weekly (invoiced quantity per SKU and week, the order "
        "book and ticket counts), copied out of the warehouse for the demand model to train on."
    ),
)
@holds_its_pool
def demand_training_set(
    context: AssetExecutionContext, storage: PlatformStorage
) -> MaterializeResult:
    import pandas as pd

    history = read_weekly_demand(storage)
    location = TRAINING_SET_TABLE.write(storage, history)
    weeks = history["period"].nunique()
    context.log.info(f"{history['series_id'].nunique()} SKUs, {weeks} complete weeks")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(location),
            "dagster/row_count": len(history),
            "dagster/column_schema": frame_schema(history),
            "sku_count": history["series_id"].nunique(),
            "complete_weeks": weeks,
            "last_week": str(pd.Timestamp(history["period"].max()).date()),
        }
    )


@asset(
    key=DEMAND_FORECAST_MODEL,
    deps=[DEMAND_TRAINING_SET],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "scikit-learn"},
    # Two years of the demo world: 24 s at 161% CPU (the boosted trees use both cores), 430 MB at its peak.
    op_tags=pod_resources(cpu="2", memory="1Gi", memory_limit="3Gi"),
    description=(
        "Trains a challenger demand forecaster on the weekly SKU demand, backtests it beside naive, "
        "seasonal naive, exponential smoothing and the production model on the same rolling origins, "
        "registers it with a model card, and promotes it only if it wins by the promotion rule."
    ),
    check_specs=[
        AssetCheckSpec(
            "promotable",
            asset=DEMAND_FORECAST_MODEL,
            blocking=True,
            description=(
                "The challenger beat the production model (WAPE at most 0.98x, bias and calibration no "
                "worse) or, for the first model, seasonal naive. A losing challenger is never promoted "
                "(WARN: the production model keeps serving); with no production model to fall back on, "
                "the check fails at ERROR and stops the forecast."
            ),
        )
    ],
)
def demand_forecast_model(
    context: AssetExecutionContext, storage: PlatformStorage, config: DemandForecastConfig
):
    from unified_assets.forecasting import backtest
    from unified_assets.forecasting.baselines import BASELINES
    from unified_assets.forecasting.selection import (
        CHALLENGERS,
        best_challenger,
        promotion_decision,
    )

    panel = weekly_demand_panel(TRAINING_SET_TABLE.read(storage))
    registry = model_registry(storage)
    champion = registry.production()
    comparable = champion is not None and champion.card.get("horizon") == config.horizon_weeks
    methods = list({m.name: m for m in [*BASELINES, *CHALLENGERS.values()]}.values())
    if comparable:
        methods.append(frozen(champion.artifact))
    context.log.info(
        f"backtesting {len(methods)} methods on {config.backtest_cutoffs} origins: "
        f"{panel.frame['series_id'].nunique()} SKUs, {panel.frame['period'].nunique()} weeks"
    )
    report = backtest(
        panel,
        config.horizon_weeks,
        config.backtest_cutoffs,
        QUANTILES,
        methods=methods,
        progress=context.log.info,
    )
    summary = report.summary()
    chosen = best_challenger(summary, CHALLENGERS)
    context.log.info(f"backtest ({config.backtest_cutoffs} origins):\n{report.table()}")

    context.log.info(f"training {chosen} on every week of the history")
    model = CHALLENGERS[chosen](config.horizon_weeks, QUANTILES).fit(panel)
    card = model_card(model, chosen, panel, report, config)
    version = registry.register(model, card)
    decision = promotion_decision(
        summary.loc[chosen],
        summary.loc["production_model"] if comparable else None,
        summary.loc["seasonal_naive"],
        QUANTILES,
    )
    if decision.promote:
        registry.promote(version, decision.reason)
    context.log.info(
        f"challenger {chosen} {version}: {'promoted' if decision.promote else 'not promoted'} "
        f"({decision.reason})"
    )
    yield MaterializeResult(
        metadata={
            "model_version": version,
            "method": chosen,
            "promoted": decision.promote,
            "decision": decision.reason,
            "production_version": registry.production_version() or "none",
            "training_data_fingerprint": card["training_data"]["fingerprint"],
            "training_weeks": card["training_data"]["periods"],
            "sku_count": card["training_data"]["series"],
            "backtest": MetadataValue.md(backtest_markdown(report)),
            "feature_importance": MetadataValue.md(importance_markdown(card["feature_importance"])),
            "backtest_plot": backtest_plot_markdown(report, panel, chosen, config.horizon_weeks),
        }
    )
    # A challenger that loses to a serving champion is only a warning: it never reaches production and the
    # forecast goes on with the champion. With no production model at all, the run stops here.
    yield AssetCheckResult(
        check_name="promotable",
        passed=decision.promote,
        severity=AssetCheckSeverity.WARN if comparable else AssetCheckSeverity.ERROR,
        metadata={"decision": decision.reason, "challenger_version": version},
    )


def model_card(model, method: str, panel: "Panel", report: "BacktestReport", config) -> dict:
    from importlib.metadata import version as package_version

    importance = {}
    if hasattr(model, "feature_importance"):
        importance = model.feature_importance().head(15).round(4).to_dict()
    return {
        "method": method,
        "horizon": config.horizon_weeks,
        "quantiles": list(QUANTILES),
        "frequency": panel.freq,
        "signals": list(DEMAND_SIGNALS),
        "features": list(getattr(model, "feature_names", [])),
        "feature_importance": importance,
        "metrics": report.summary().loc[method].round(4).to_dict(),
        "backtest": report.metrics.round(4).to_dict(orient="records"),
        "backtest_origins": sorted(str(c.date()) for c in report.forecasts["cutoff"].unique()),
        "training_data": {
            "fingerprint": panel.fingerprint(),
            "first_period": str(panel.frame["period"].min().date()),
            "last_period": str(panel.last_period.date()),
            "periods": int(panel.frame["period"].nunique()),
            "series": int(panel.frame["series_id"].nunique()),
            "rows": len(panel.frame),
        },
        "code_version": package_version("unified_assets"),
    }


def backtest_markdown(report: "BacktestReport") -> str:
    from unified_assets.forecasting.metrics import quantile_column

    columns = ["wape", "bias", "mase", *[f"coverage_{quantile_column(q)}" for q in QUANTILES]]
    summary = report.summary().sort_values("wape")[columns]
    return markdown_table(summary.rename_axis("method").reset_index(), float_format=".3f")


def importance_markdown(importance: dict) -> str:
    if not importance:
        return "The chosen method has no learned features."
    import pandas as pd

    table = pd.DataFrame({"feature": list(importance), "importance": list(importance.values())})
    return markdown_table(table, float_format=".4f")


def backtest_plot_markdown(
    report: "BacktestReport", panel: "Panel", method: str, horizon: int
) -> MetadataValue:
    from unified_assets.forecasting.metrics import POINT
    from unified_assets.forecasting.plot import forecast_vs_actual_png

    forecasts = report.forecasts[report.forecasts["method"] == method]
    totals = (
        forecasts.groupby(["cutoff", "period"], as_index=False)[[POINT, "q90"]]
        .sum()
        .rename(columns={"cutoff": "origin"})
    )
    first = forecasts["cutoff"].min() - timedelta(weeks=3 * horizon)
    actual = panel.frame[panel.frame["period"] >= first].groupby("period")["y"].sum()
    png = forecast_vs_actual_png(
        actual, totals, f"{method}: backtest forecasts vs actual, all SKUs"
    )
    return png_markdown(png, "backtest")


@asset(
    key=DEMAND_FORECAST,
    automation_condition=rebuild_when_upstream_changes(checks_not_blocking=[DEMAND_FORECAST_MODEL]),
    deps=[DEMAND_FORECAST_MODEL, WEEKLY_DEMAND],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "scikit-learn", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "The next weeks of demand for every active SKU from the production model, with its mean and "
        "quantiles (q50, q90, q95) and the model version that made it."
    ),
)
@holds_its_pool
def demand_forecast(context: AssetExecutionContext, storage: PlatformStorage) -> MaterializeResult:
    import pandas as pd

    from unified_assets.forecasting.metrics import POINT, quantile_column
    from unified_assets.forecasting.plot import forecast_vs_actual_png

    production = model_registry(storage).production()
    if production is None:
        raise Failure(
            description="no production demand model yet: materialize ml/demand_forecast_model first"
        )
    history = read_weekly_demand(storage)
    forecast = production.artifact.predict(weekly_demand_panel(history))
    forecast = forecast[forecast["series_id"].isin(active_skus(history))]
    origin = pd.Timestamp(history["period"].max())
    table = pd.DataFrame(
        {
            "product_sku": forecast["series_id"],
            "week_start": forecast["period"],
            "forecast_mean": forecast[POINT].round(2),
            **{quantile_column(q): forecast[quantile_column(q)].round(2) for q in QUANTILES},
            "forecast_origin": origin,
            "model_version": production.version,
        }
    )
    location = DEMAND_FORECAST_TABLE.write(storage, table)
    context.log.info(
        f"{table['product_sku'].nunique()} SKUs forecast for {len(table['week_start'].unique())} "
        f"weeks from {origin.date()} with model {production.version}"
    )
    totals = forecast.groupby("period", as_index=False)[[POINT, "q90"]].sum()
    actual = history[history["period"] > origin - timedelta(weeks=26)].groupby("period")["y"].sum()
    png = forecast_vs_actual_png(actual, totals, "Demand, all SKUs: last 26 weeks and forecast")
    return MaterializeResult(
        metadata={
            "model_version": production.version,
            "forecast_origin": str(origin.date()),
            "path": MetadataValue.path(location),
            "dagster/row_count": len(table),
            "dagster/column_schema": frame_schema(table),
            "preview": MetadataValue.md(markdown_table(table.head(12))),
            "forecast_plot": png_markdown(png, "forecast"),
        }
    )


def active_skus(history: "pd.DataFrame") -> set:
    recent = history[history["period"] > history["period"].max() - timedelta(weeks=ACTIVE_WEEKS)]
    activity = recent[["y", *DEMAND_SIGNALS]].sum(axis=1)
    return set(recent.loc[activity > 0, "series_id"])


forecast_assets = [demand_training_set, demand_forecast_model, demand_forecast]
