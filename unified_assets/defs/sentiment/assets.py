"""Ticket sentiment: a label and score for every ticket from the better of a lexicon and a text model, and
the sensor's measure of when to retrain it. dbt reads the scores back through the `ml` source
(`lib/handoffs.py` names the file). pandas and the sentiment models are imported when the asset runs, not
by every process that loads the definitions."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from unified_assets.defs.sentiment.tickets import STAGED_TICKETS, sentiment_registry
from unified_assets.lib.automation import rebuild_when_upstream_changes
from unified_assets.lib.handoffs import TICKET_SENTIMENT_TABLE
from unified_assets.lib.keys import DEMAND_PLANNING, TICKET_SENTIMENT
from unified_assets.lib.metadata import markdown_table
from unified_assets.lib.pools import holds_its_pool
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
