"""The sensor that retrains the demand forecast model when it degrades or enough new data has arrived.

Each tick measures the production model on what arrived since it was trained and asks `retraining` for a
verdict; a retraining request carries the reason as a tag, a skip says what was measured. The run key names
the model version and the newest data seen, so one reason never starts two runs for the same data.
pandas and the retraining rules are imported by the tick that measures, not by every process that loads
the definitions.
"""

from typing import TYPE_CHECKING

import duckdb
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    Failure,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from unified_assets.defs.forecast.demand_history import (
    DEMAND_TRAINING_SET,
    model_registry,
    read_weekly_demand,
    weekly_demand_panel,
)
from unified_assets.lib.keys import DEMAND_FORECAST_MODEL
from unified_assets.lib.storage import PlatformStorage

if TYPE_CHECKING:
    import pandas as pd

    from unified_assets.forecasting import Panel


def realized_since_training(model, card: dict, panel: "Panel") -> "pd.DataFrame":
    """The production model's accuracy on each complete period after its training data, pooled over
    every origin since training that it could have forecast that period from (1 to `horizon` steps
    ahead, as in its backtest)."""
    import pandas as pd

    from unified_assets.retraining import realized_accuracy

    trained_until = pd.Timestamp(card["training_data"]["last_period"])
    periods = pd.DatetimeIndex(sorted(panel.frame["period"].unique()))
    origins = periods[(periods >= trained_until) & (periods < periods[-1])]
    scored = []
    for origin in origins:
        forecast = model.predict(panel.until(origin))[["series_id", "period", "mean"]]
        actual = panel.frame[panel.frame["period"] > origin][["series_id", "period", "y"]]
        scored.append(actual.merge(forecast, on=["series_id", "period"], how="inner"))
    if not scored:
        return realized_accuracy(pd.DataFrame(columns=["series_id", "period", "y", "mean"]))
    return realized_accuracy(pd.concat(scored, ignore_index=True))


@sensor(
    name="demand_model_retraining",
    # The training set too: the model must learn from the history the sensor judged it on.
    asset_selection=AssetSelection.assets(DEMAND_TRAINING_SET, DEMAND_FORECAST_MODEL),
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Retrains ml/demand_forecast_model when the production model's realized WAPE exceeds 1.2x its "
        "backtest WAPE two periods running, its |bias| exceeds 10%, or a new complete week and 10% more "
        "rows have arrived."
    ),
)
def demand_model_retraining(context: SensorEvaluationContext, storage: PlatformStorage):
    import pandas as pd

    from unified_assets.retraining import REASON_TAG, first_line, forecast_verdict

    production = model_registry(storage).production()
    if production is None:
        return SkipReason("no production demand model yet: materialize ml/demand_forecast_model")
    try:
        history = read_weekly_demand(storage)
    except (Failure, duckdb.Error) as error:
        return SkipReason(f"cannot read the weekly demand now: {first_line(error)}")
    newest = str(pd.Timestamp(history["period"].max()).date())
    if context.cursor == f"{production.version}:{newest}":
        return SkipReason(f"{production.version}: no new complete week since {newest}")
    panel = weekly_demand_panel(history)
    realized = realized_since_training(production.artifact, production.card, panel)
    verdict = forecast_verdict(
        production.card["metrics"]["wape"],
        realized,
        production.card["training_data"]["rows"],
        len(panel.frame),
    )
    cursor = f"{production.version}:{newest}"  # what this tick judged: a model and the data it saw
    if not verdict.retrain:
        return SensorResult(skip_reason=f"{production.version}: {verdict.reason}", cursor=cursor)
    context.log.info(f"retraining the demand model: {verdict.reason}")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{production.version}:{verdict.code}:{newest}",
                tags={REASON_TAG: verdict.reason},
            )
        ],
        cursor=cursor,
    )
