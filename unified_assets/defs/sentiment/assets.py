"""Ticket sentiment: a label and score for every ticket from the better of a lexicon and a text model, the
sensor's measure of when to retrain it, and the scores written back to the support system's tickets. dbt
reads the scores back through the `ml` source (`lib/handoffs.py` names the file). pandas and the sentiment
models are imported when the asset runs, not by every process that loads the definitions."""

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from unified_assets.defs.sentiment.tickets import STAGED_TICKETS, sentiment_registry
from unified_assets.lib.automation import rebuild_when_upstream_changes
from unified_assets.lib.handoffs import TICKET_SENTIMENT_TABLE
from unified_assets.lib.keys import DEMAND_PLANNING, TICKET_SENTIMENT
from unified_assets.lib.metadata import markdown_table
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.source_apis import SupportApi
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL, open_warehouse


@asset(
    key=TICKET_SENTIMENT,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[STAGED_TICKETS],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "scikit-learn", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "A sentiment label and score (-1..1) for every ticket, from the better of a support-tuned VADER "
        "lexicon and a TF-IDF text model trained on the agent-labelled tickets (macro F1 on a held-out "
        "quarter decides); each score records the model version. dbt reads the scores into "
        "marts/unified_demand (avg_product_sentiment)."
    ),
)
@holds_its_pool
def ticket_sentiment(context: AssetExecutionContext, storage: PlatformStorage) -> MaterializeResult:
    import numpy as np
    import pandas as pd

    from unified_assets import sentiment

    with open_warehouse(storage) as con:
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
    registry = sentiment_registry(storage)
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
    TICKET_SENTIMENT_TABLE.write(storage, scored)
    context.log.info(f"{len(scored)} tickets scored with {choice.version}: {choice.reason}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": version,
            "model": choice.version.rsplit("-", 1)[0],
            "labelled_tickets": int(labelled.sum()),
            "why_this_model": choice.reason,
            "f1_macro": MetadataValue.md(
                markdown_table(
                    pd.DataFrame(
                        {"model": list(choice.f1), "macro F1 (held out)": list(choice.f1.values())}
                    ),
                    float_format=".3f",
                )
                if choice.f1
                else "no held-out tickets yet (too few labelled)"
            ),
            "label_counts": MetadataValue.json(scored["sentiment_label"].value_counts().to_dict()),
        }
    )


SENTIMENT_SYNC = AssetKey(["ml", "support_ticket_sentiment_sync"])
# What the support system took, per ticket (sentiment_writeback.py): under the operations folder.
SENTIMENT_LEDGER = ("support_ticket_sentiment", "ledger.parquet")


class SentimentSyncConfig(Config):
    job_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between polls of a bulk update job's status."
    )
    job_deadline_s: float = Field(
        default=600.0,
        gt=0,
        description="How long one bulk update job may stay unfinished before the run gives up on it "
        "(the next run asks for it again).",
    )


class OperationsLedger:
    """The write-back's ledger as one Parquet file in the operations place, published whole."""

    def __init__(self, storage: PlatformStorage):
        self.place = storage.operations_place()
        self.location = self.place.join(*SENTIMENT_LEDGER)

    def read(self):
        if not self.place.exists(self.location):
            return None
        with self.place.connect() as con:
            return con.execute("select * from read_parquet(?)", [self.location]).df()

    def write(self, table) -> None:
        from unified_assets.lib.handoffs import publish_table

        publish_table(self.place, table, self.location)


@asset(
    key=SENTIMENT_SYNC,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[TICKET_SENTIMENT],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "zendesk"},
    pool="support_api",
    description=(
        "Writes each ticket's sentiment to the support system, so agents can sort a queue by it: the "
        "'Predicted sentiment' and 'Sentiment score' ticket fields and a predicted_<label> tag, through "
        "Zendesk's bulk update (100 tickets a job, each job polled until it has run). Only tickets whose "
        "label or score changed are sent; a ledger of what was taken makes a re-run after a failure "
        "send nothing twice."
    ),
)
@holds_its_pool
def support_ticket_sentiment_sync(
    context: AssetExecutionContext,
    config: SentimentSyncConfig,
    storage: PlatformStorage,
    support_api: SupportApi,
) -> MaterializeResult:
    from unified_assets.sentiment_writeback import JobWatch, write_back

    scored = TICKET_SENTIMENT_TABLE.read(storage)
    with support_api.open_client(context.log) as client:
        outcome = write_back(
            scored,
            OperationsLedger(storage),
            client,
            client.sentiment_fields(),
            JobWatch(client, config.job_poll_interval_s, config.job_deadline_s),
            context.log.warning,
        )
    context.log.info(
        f"{support_api.SYSTEM}: sentiment written to {outcome.written} tickets, {outcome.unchanged} "
        f"already up to date, {outcome.refused} refused"
    )
    return MaterializeResult(
        metadata={
            "tickets_written": outcome.written,
            "tickets_unchanged": outcome.unchanged,
            "tickets_refused": outcome.refused,
            "jobs_resumed": outcome.resumed_jobs,
            "tickets": len(scored),
        }
    )
