"""The sensor that retrains ticket sentiment when its macro F1 on newly labelled tickets drops, or when
many new labels have arrived; each tick says what it measured. The measuring libraries (pandas,
scikit-learn) are imported by the tick that measures, not by every process that loads the definitions."""

import duckdb
from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from unified_assets.defs.sentiment.tickets import read_labelled_tickets, sentiment_registry
from unified_assets.lib.keys import TICKET_SENTIMENT
from unified_assets.lib.storage import PlatformStorage

MIN_TICKETS_FOR_F1 = 30


@sensor(
    name="sentiment_model_retraining",
    asset_selection=AssetSelection.assets(TICKET_SENTIMENT),
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Retrains ml/ticket_sentiment when macro F1 on tickets labelled since training drops below 0.82 "
        "or more than 5,000 new labelled tickets have arrived."
    ),
)
def sentiment_model_retraining(context: SensorEvaluationContext, storage: PlatformStorage):
    from unified_assets.retraining import REASON_TAG, first_line, sentiment_verdict
    from unified_assets.sentiment import ticket_text

    production = sentiment_registry(storage).production()
    if production is None:
        return SkipReason("no production sentiment model yet: materialize ml/ticket_sentiment")
    try:
        new = read_labelled_tickets(storage, since=production.card["trained_through"])
    except duckdb.Error as error:
        return SkipReason(f"cannot read the tickets now: {first_line(error)}")
    f1 = None
    if len(new) >= MIN_TICKETS_FOR_F1:
        from sklearn.metrics import f1_score

        predicted = production.artifact.predict(ticket_text(new["subject"], new["description"]))
        f1 = float(f1_score(new["agent_sentiment"], predicted, average="macro"))
    verdict = sentiment_verdict(len(new), f1)
    if not verdict.retrain:
        return SkipReason(f"{production.version}: {verdict.reason}")
    newest = str(new["updated_at"].max())
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"{production.version}:{verdict.code}:{newest}",
                tags={REASON_TAG: verdict.reason},
            )
        ],
        cursor=newest,
    )
