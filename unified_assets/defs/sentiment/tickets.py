"""The agent-labelled tickets sentiment is learned from and judged against, and where its model is kept:
read the same way by the sentiment asset and its retraining sensor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_assets.lib.dbt_project import dbt_model_key
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import open_warehouse
from unified_assets.model_registry import ModelRegistry

if TYPE_CHECKING:
    import pandas as pd

STAGED_TICKETS = dbt_model_key("stg_support__tickets")
REGISTERED_MODEL = "ticket_sentiment"


def sentiment_registry(storage: PlatformStorage) -> ModelRegistry:
    return storage.model_registry(REGISTERED_MODEL)


def read_labelled_tickets(storage: PlatformStorage, since: str | None = None) -> pd.DataFrame:
    """Agent-labelled tickets (text and label), only those updated after `since` when given."""
    with open_warehouse(storage) as con:
        return con.execute(
            """
            select ticket_id, subject, description, agent_sentiment, updated_at
            from staging.stg_support__tickets
            where not is_deleted and agent_sentiment is not null
              and ($since is null or updated_at > cast($since as timestamptz))
            """,
            {"since": since},
        ).df()
