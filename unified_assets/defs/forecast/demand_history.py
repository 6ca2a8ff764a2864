"""The demand history the forecast is trained on and judged against, read the same way by the model asset,
the forecast and the retraining sensor; and where the production model is kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetKey, Failure

from unified_assets.lib.dbt_project import dbt_model_key
from unified_assets.lib.handoffs import Handoff
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import open_warehouse
from unified_assets.model_registry import ModelRegistry

if TYPE_CHECKING:
    import pandas as pd

    from unified_assets.forecasting import Panel

WEEKLY_DEMAND = dbt_model_key("sku_demand_weekly")
DEMAND_TRAINING_SET = AssetKey(["ml", "demand_training_set"])
# The weekly history copied out of the warehouse, so the model trains without holding the warehouse.
TRAINING_SET_TABLE = Handoff(DEMAND_TRAINING_SET, "demand_training_set")
REGISTERED_MODEL = "demand_forecast"
QUANTILES = (0.5, 0.9, 0.95)
# What the unified data adds to invoice history: the order book as it stood at each week's end (quantity
# due one to four weeks ahead, so a forecast of week t + k reads what was due then), orders placed, tickets.
ORDER_BOOK = {
    "open_orders_due": tuple(f"open_order_quantity_due_week_{k}" for k in range(1, 5)),
}
DEMAND_SIGNALS = (*ORDER_BOOK["open_orders_due"], "ordered_quantity", "ticket_count")


def model_registry(storage: PlatformStorage) -> ModelRegistry:
    return storage.model_registry(REGISTERED_MODEL)


def read_weekly_demand(storage: PlatformStorage) -> pd.DataFrame:
    """Complete weeks of `marts.sku_demand_weekly` as a forecasting history (series_id, period, y and the
    signals). A week is complete when the marts hold a later day; the first week is dropped when the
    history starts mid-week, since a short week would read as a collapse in demand."""
    signals = ", ".join(DEMAND_SIGNALS)
    with open_warehouse(storage) as con:
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
    from unified_assets.forecasting import prepare_panel

    return prepare_panel(history, known_ahead=ORDER_BOOK)
