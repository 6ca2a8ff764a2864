"""The `ml` group: the demand forecast model (trained, backtested against the baselines and the production
model, registered, promoted only when better), the forecast the production model makes, and ticket
sentiment.

Both read the warehouse, so both are in the warehouse pool: DuckDB lets no reader in while dbt writes.
They hand nothing to each other in memory: the model goes through the registry, the forecast to a
Parquet file under the data folder.
"""

import base64
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)
from pydantic import Field

from unified_assets import sentiment, settings
from unified_assets.assets.automation import rebuild_when_upstream_changes
from unified_assets.assets.transform import WAREHOUSE_POOL, open_warehouse
from unified_assets.confined_duckdb import confined_duckdb
from unified_assets.durable import fsync_directory, fsync_file
from unified_assets.forecasting import BacktestReport, Panel, backtest, prepare_panel
from unified_assets.forecasting.baselines import BASELINES
from unified_assets.forecasting.metrics import POINT, quantile_column
from unified_assets.forecasting.plot import forecast_vs_actual_png
from unified_assets.forecasting.selection import (
    CHALLENGERS,
    best_challenger,
    promotion_decision,
)
from unified_assets.model_registry import ModelRegistry

ML_OWNER = "team:demand-planning"
WEEKLY_DEMAND = AssetKey(["marts", "sku_demand_weekly"])
FORECAST_MODEL = AssetKey(["ml", "demand_forecast_model"])
FORECAST = AssetKey(["ml", "demand_forecast"])
REGISTERED_MODEL = "demand_forecast"
QUANTILES = (0.5, 0.9, 0.95)
# What the unified data adds to invoice history: the order book as it stood at each week's end (quantity
# due one to four weeks ahead, so a forecast of week t + k reads what was due then), orders placed, tickets.
ORDER_BOOK = {
    "open_orders_due": tuple(f"open_order_quantity_due_week_{k}" for k in range(1, 5)),
}
DEMAND_SIGNALS = (*ORDER_BOOK["open_orders_due"], "ordered_quantity", "ticket_count")
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


def model_registry() -> ModelRegistry:
    return ModelRegistry(settings.data_dir() / "models", REGISTERED_MODEL)


def forecast_path() -> Path:
    return settings.data_dir() / "ml" / "demand_forecast.parquet"


def read_weekly_demand() -> pd.DataFrame:
    """Complete weeks of `marts.sku_demand_weekly` as a forecasting history (series_id, period, y and the
    signals). A week is complete when the marts hold a later day; the first week is dropped when the
    history starts mid-week, since a short week would read as a collapse in demand."""
    signals = ", ".join(DEMAND_SIGNALS)
    with open_warehouse() as con:
        weekly = con.execute(
            f"""
            select product_sku as series_id, week_start as period, invoiced_quantity as y, {signals}
            from marts.sku_demand_weekly
            where week_start + interval 7 day <= (select max(demand_date) from marts.sku_demand_daily)
              and week_start >= (
                  select cast(date_trunc('week', min(demand_date) + interval 6 day) as date)
                  from marts.sku_demand_daily
              )
            order by series_id, period
            """
        ).df()
    if weekly.empty:
        raise Failure(description="marts.sku_demand_weekly has no complete week yet")
    return weekly


def weekly_demand_panel(history: pd.DataFrame) -> Panel:
    return prepare_panel(history, known_ahead=ORDER_BOOK)


def frozen(model, name: str = "production_model"):
    """A backtest method that scores each window with an already-fitted model, never refitting it."""

    class Frozen:
        def __init__(self, horizon: int, quantiles: tuple[float, ...]):
            self.name = name

        def fit(self, panel: Panel):
            self._panel = panel
            return self

        def predict(self):
            return model.predict(self._panel)

    return Frozen


@asset(
    key=FORECAST_MODEL,
    deps=[WEEKLY_DEMAND],
    group_name="ml",
    owners=[ML_OWNER],
    kinds={"python", "scikit-learn"},
    pool=WAREHOUSE_POOL,
    description=(
        "Trains a challenger demand forecaster on the weekly SKU demand, backtests it beside naive, "
        "seasonal naive, exponential smoothing and the production model on the same rolling origins, "
        "registers it with a model card, and promotes it only if it wins by the promotion rule."
    ),
    check_specs=[
        AssetCheckSpec(
            "promotable",
            asset=FORECAST_MODEL,
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
def demand_forecast_model(context: AssetExecutionContext, config: DemandForecastConfig):
    panel = weekly_demand_panel(read_weekly_demand())
    registry = model_registry()
    champion = registry.production()
    comparable = champion is not None and champion.card.get("horizon") == config.horizon_weeks
    methods = list({m.name: m for m in [*BASELINES, *CHALLENGERS.values()]}.values())
    if comparable:
        methods.append(frozen(champion.artifact))
    report = backtest(
        panel, config.horizon_weeks, config.backtest_cutoffs, QUANTILES, methods=methods
    )
    summary = report.summary()
    chosen = best_challenger(summary, CHALLENGERS)
    context.log.info(f"backtest ({config.backtest_cutoffs} origins):\n{report.table()}")

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
            "backtest_plot": MetadataValue.md(
                backtest_plot_markdown(report, panel, chosen, config.horizon_weeks)
            ),
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


def model_card(model, method: str, panel: Panel, report: BacktestReport, config) -> dict:
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


def backtest_markdown(report: BacktestReport) -> str:
    summary = report.summary()
    columns = ["wape", "bias", "mase", *[f"coverage_{quantile_column(q)}" for q in QUANTILES]]
    lines = [
        "| method | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for method, row in summary.sort_values("wape").iterrows():
        lines.append(f"| {method} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def importance_markdown(importance: dict) -> str:
    if not importance:
        return "The chosen method has no learned features."
    lines = ["| feature | importance |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in importance.items()]
    return "\n".join(lines)


def backtest_plot_markdown(report: BacktestReport, panel: Panel, method: str, horizon: int) -> str:
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
    return f"![backtest](data:image/png;base64,{base64.b64encode(png).decode()})"


@asset(
    key=FORECAST,
    automation_condition=rebuild_when_upstream_changes(checks_not_blocking=[FORECAST_MODEL]),
    deps=[FORECAST_MODEL, WEEKLY_DEMAND],
    group_name="ml",
    owners=[ML_OWNER],
    kinds={"python", "scikit-learn", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "The next weeks of demand for every active SKU from the production model, with its mean and "
        "quantiles (q50, q90, q95) and the model version that made it."
    ),
)
def demand_forecast(context: AssetExecutionContext) -> MaterializeResult:
    production = model_registry().production()
    if production is None:
        raise Failure(
            description="no production demand model yet: materialize ml/demand_forecast_model first"
        )
    history = read_weekly_demand()
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
    write_parquet_atomically(table, forecast_path())
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
            "path": MetadataValue.path(str(forecast_path())),
            "dagster/row_count": len(table),
            "dagster/column_schema": frame_schema(table),
            "preview": MetadataValue.md(markdown_table(table.head(12))),
            "forecast_plot": MetadataValue.md(
                f"![forecast](data:image/png;base64,{base64.b64encode(png).decode()})"
            ),
        }
    )


def frame_schema(frame: pd.DataFrame) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name, str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def active_skus(history: pd.DataFrame) -> set:
    recent = history[history["period"] > history["period"].max() - timedelta(weeks=ACTIVE_WEEKS)]
    activity = recent[["y", *DEMAND_SIGNALS]].sum(axis=1)
    return set(recent.loc[activity > 0, "series_id"])


def write_parquet_atomically(table: pd.DataFrame, path: Path) -> None:
    """Readers see the previous file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        quoted = str(temporary).replace("'", "''")
        with confined_duckdb(allowed=[path.parent]) as con:
            con.register("forecast", table)
            con.execute(f"copy forecast to '{quoted}' (format parquet)")
        fsync_file(temporary)
        temporary.replace(path)
        fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


SENTIMENT = AssetKey(["ml", "ticket_sentiment"])
STAGED_TICKETS = AssetKey(["staging", "stg_support__tickets"])


def sentiment_registry() -> ModelRegistry:
    return ModelRegistry(settings.data_dir() / "models", "ticket_sentiment")


def read_labelled_tickets(since: str | None = None) -> pd.DataFrame:
    """Agent-labelled tickets (text and label), only those updated after `since` when given."""
    with open_warehouse() as con:
        return con.execute(
            """
            select ticket_id, subject, description, agent_sentiment, updated_at
            from staging.stg_support__tickets
            where not is_deleted and agent_sentiment is not null
              and ($since is null or updated_at > cast($since as timestamptz))
            """,
            {"since": since},
        ).df()


def sentiment_path() -> Path:
    return settings.data_dir() / "ml" / "ticket_sentiment.parquet"


@asset(
    key=SENTIMENT,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[STAGED_TICKETS],
    group_name="ml",
    owners=[ML_OWNER],
    kinds={"python", "scikit-learn", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "A sentiment label and score (-1..1) for every ticket, from the better of a support-tuned VADER "
        "lexicon and a TF-IDF text model trained on the agent-labelled tickets (macro F1 on a held-out "
        "quarter decides); each score records the model version. dbt reads the scores into "
        "marts/unified_demand (avg_product_sentiment)."
    ),
)
def ticket_sentiment(context: AssetExecutionContext) -> MaterializeResult:
    with open_warehouse() as con:
        tickets = con.execute(
            """
            select ticket_id, subject, description, agent_sentiment, updated_at
            from staging.stg_support__tickets
            where not is_deleted
            order by ticket_id
            """
        ).df()
    texts = sentiment.ticket_text(tickets["subject"], tickets["description"])
    labelled = tickets["agent_sentiment"].notna().to_numpy()
    choice = sentiment.choose_model(
        [t for t, keep in zip(texts, labelled, strict=True) if keep],
        tickets.loc[labelled, "agent_sentiment"].tolist(),
    )
    registry = sentiment_registry()
    version = registry.register(
        choice.model,
        {
            "f1_macro": choice.f1,
            "held_out_tickets": choice.held_out,
            "labelled": int(labelled.sum()),
            # Tickets labelled (or relabelled) after this are new to the model.
            "trained_through": str(tickets.loc[labelled, "updated_at"].max())
            if labelled.any()
            else None,
        },
    )
    registry.promote(version, choice.reason)
    scored = pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"],
            "sentiment_label": choice.model.predict(texts),
            "sentiment_score": np.round(choice.model.score(texts), 3),
            "model_version": version,
        }
    )
    write_parquet_atomically(scored, sentiment_path())
    context.log.info(f"{len(scored)} tickets scored with {choice.version}: {choice.reason}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": version,
            "model": choice.version.rsplit("-", 1)[0],
            "labelled_tickets": int(labelled.sum()),
            "why_this_model": choice.reason,
            "f1_macro": MetadataValue.md(
                "| model | macro F1 (held out) |\n|---|---:|\n"
                + "\n".join(f"| {k} | {v:.3f} |" for k, v in choice.f1.items())
                if choice.f1
                else "no held-out tickets yet (too few labelled)"
            ),
            "label_counts": MetadataValue.json(scored["sentiment_label"].value_counts().to_dict()),
        }
    )


ml_assets = [demand_forecast_model, demand_forecast, ticket_sentiment]
