"""The asset keys one domain reads from another, and who owns what.

A domain never imports another domain's module: what crosses is data, named here once. The keys of dbt
models come from the dbt manifest (`unified_assets.lib.dbt_project.dbt_model_key`), not from here.
"""

from dagster import AssetKey

DATA_PLATFORM = "team:data-platform"
DEMAND_PLANNING = "team:demand-planning"

DEMAND_FORECAST_MODEL = AssetKey(["ml", "demand_forecast_model"])
DEMAND_FORECAST = AssetKey(["ml", "demand_forecast"])
TICKET_SENTIMENT = AssetKey(["ml", "ticket_sentiment"])

# The raw extracts, by the source system each reads. Capacity planning reads their run history.
RAW_EXTRACTS = {
    "accounting": AssetKey(["raw", "invoices"]),
    "purchasing": AssetKey(["raw", "purchase_orders"]),
    "support": AssetKey(["raw", "support_tickets"]),
}
CAPACITY_FORECAST = AssetKey(["operations", "capacity_forecast"])


def run_total_tag(table: str, figure: str) -> str:
    """The run tag an extraction of `table` records one of its totals in (pages, records, peak memory...):
    totals describe a run, not any one day it landed."""
    return f"unified_assets/{table}.{figure}"
