"""From the demand forecast to action: safety stock per SKU, written back to the purchase-order system, and
a report of the SKUs at risk of running out.

`safety_stock_recommendations` reads the warehouse (lead times, the open order book), so it is in the
warehouse pool; the write-back and the report read only its Parquet file.
"""

from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from unified_assets.lib.automation import rebuild_when_upstream_changes
from unified_assets.lib.dbt_project import dbt_model_key
from unified_assets.lib.handoffs import DEMAND_FORECAST_TABLE, Handoff
from unified_assets.lib.keys import DEMAND_FORECAST, DEMAND_PLANNING
from unified_assets.lib.metadata import frame_schema, markdown_table
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.source_apis import PurchasingApi
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL, open_warehouse

if TYPE_CHECKING:
    import pandas as pd

RECOMMENDATIONS = AssetKey(["ml", "safety_stock_recommendations"])
SYNC = AssetKey(["ml", "purchase_order_safety_stock_sync"])
REPORT = AssetKey(["ml", "stockout_risk_report"])
LEAD_TIMES = dbt_model_key("sku_lead_times")
WEEKLY_DEMAND = dbt_model_key("sku_demand_weekly")
RECOMMENDATIONS_TABLE = Handoff(RECOMMENDATIONS, "safety_stock_recommendations")
# The custom fields safety stock is written to on the purchasing system's items.
SAFETY_STOCK_FIELD = "safety-stock"
REORDER_POINT_FIELD = "reorder-point"


class SafetyStockConfig(Config):
    service_level: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="Chance of not running out during a lead time (cycle service level), e.g. 0.95.",
    )


def read_supply(storage: PlatformStorage) -> "pd.DataFrame":
    """Lead times and item ids per SKU, with the open order book of the latest complete week."""
    with open_warehouse(storage) as con:
        return con.execute(
            """
            with latest as (
                select * from marts.sku_demand_weekly
                qualify week_start = max(week_start) over ()
            )
            select
                lead.product_sku,
                lead.purchasing_item_id,
                lead.lead_time_days,
                coalesce(latest.open_order_quantity_due_week_1, 0)
                    + coalesce(latest.open_order_quantity_due_week_2, 0)
                    + coalesce(latest.open_order_quantity_due_week_3, 0)
                    + coalesce(latest.open_order_quantity_due_week_4, 0) as open_order_quantity
            from marts.sku_lead_times as lead
            left join latest using (product_sku)
            """
        ).df()


@asset(
    key=RECOMMENDATIONS,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[DEMAND_FORECAST, LEAD_TIMES, WEEKLY_DEMAND],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python", "parquet"},
    pool=WAREHOUSE_POOL,
    description=(
        "Safety stock and reorder point per SKU from the demand forecast's quantiles, the supplier lead "
        "time buyers plan with, and a configurable service level; with the open purchase-order quantity "
        "against the reorder point."
    ),
)
@holds_its_pool
def safety_stock_recommendations(
    context: AssetExecutionContext, storage: PlatformStorage, config: SafetyStockConfig
) -> MaterializeResult:
    from unified_assets.inventory import safety_stock  # pandas: imported when this runs

    forecast = DEMAND_FORECAST_TABLE.read(storage)
    supply = read_supply(storage)
    table = safety_stock(forecast, supply, config.service_level)
    table = table.merge(
        supply[["product_sku", "purchasing_item_id", "open_order_quantity"]], on="product_sku"
    )
    table["shortfall"] = (table["reorder_point"] - table["open_order_quantity"]).clip(lower=0)
    table["model_version"] = forecast["model_version"].iloc[0]
    skipped = sorted(set(forecast["product_sku"]) - set(table["product_sku"]))
    if skipped:
        context.log.warning(
            f"{len(skipped)} forecast SKUs have no planned lead time (never ordered in 180 days) or "
            f"one beyond the forecast horizon: {', '.join(skipped[:10])}"
        )
    RECOMMENDATIONS_TABLE.write(storage, table)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "dagster/column_schema": frame_schema(table),
            "service_level": config.service_level,
            "model_version": table["model_version"].iloc[0] if len(table) else "none",
            "total_safety_stock": int(table["safety_stock"].sum()),
            "skus_without_lead_time": len(skipped),
            "preview": MetadataValue.md(markdown_table(table.head(12))),
        }
    )


@asset(
    key=SYNC,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[RECOMMENDATIONS],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python"},
    pool="purchasing_api",
    description=(
        "Writes each SKU's safety stock and reorder point to its item in the purchase-order system "
        "(custom fields, PUT). Idempotent: an item already holding the values is left alone."
    ),
)
@holds_its_pool
def purchase_order_safety_stock_sync(
    context: AssetExecutionContext, storage: PlatformStorage, purchasing_api: PurchasingApi
) -> MaterializeResult:
    table = RECOMMENDATIONS_TABLE.read(storage)
    updated = unchanged = 0
    with purchasing_api.open_client(context.log) as client:
        for row in table.itertuples(index=False):
            wanted = {
                SAFETY_STOCK_FIELD: int(row.safety_stock),
                REORDER_POINT_FIELD: int(row.reorder_point),
            }
            item_id = int(row.purchasing_item_id)
            current = client.item_custom_fields(item_id)
            if all(current.get(name) == value for name, value in wanted.items()):
                unchanged += 1
                continue
            client.set_item_custom_fields(item_id, wanted)
            updated += 1
    context.log.info(
        f"{purchasing_api.SYSTEM}: safety stock written to {updated} items, "
        f"{unchanged} already up to date"
    )
    return MaterializeResult(
        metadata={"items_updated": updated, "items_unchanged": unchanged, "items": len(table)}
    )


@asset(
    key=REPORT,
    automation_condition=rebuild_when_upstream_changes(),
    deps=[RECOMMENDATIONS],
    group_name="ml",
    owners=[DEMAND_PLANNING],
    kinds={"python"},
    description=(
        "For procurement: the SKUs whose reorder point is not covered by open purchase orders, largest "
        "shortfall first, as a markdown table in the asset's metadata."
    ),
)
def stockout_risk_report(storage: PlatformStorage) -> MaterializeResult:
    table = RECOMMENDATIONS_TABLE.read(storage)
    at_risk = table[table["shortfall"] > 0].sort_values("shortfall", ascending=False)
    columns = [
        "product_sku",
        "lead_time_days",
        "demand_over_lead_time",
        "safety_stock",
        "reorder_point",
        "open_order_quantity",
        "shortfall",
    ]
    heading = (
        f"**{len(at_risk)} of {len(table)} SKUs** are at risk of a stock-out: expected demand over "
        f"the lead time plus safety stock (service level {table['service_level'].max():.0%}) exceeds "
        "the quantity on open purchase orders.\n\n"
    )
    report = heading + (markdown_table(at_risk[columns].head(25)) if len(at_risk) else "")
    return MaterializeResult(
        metadata={
            "skus_at_risk": len(at_risk),
            "total_shortfall": int(at_risk["shortfall"].sum()),
            "report": MetadataValue.md(report),
        }
    )


replenishment_assets = [
    safety_stock_recommendations,
    purchase_order_safety_stock_sync,
    stockout_risk_report,
]
