"""Assets started by business events rather than by a clock: the operations group.

- `operations/enriched_p1_tickets`: one partition per priority-1 (urgent) ticket, added by the `p1_tickets`
  sensor the moment the ticket is seen (webhook or export). The ticket as Zendesk holds it now, PII-redacted,
  next to what finance and procurement know about that customer: open purchase orders and past-due
  invoices, from the warehouse's unified customer identity.
- `operations/month_end_close`: one partition per month, started by the `books_closed` sensor when the
  accounting system's books for that month close. Freezes the month's unified demand per SKU and the
  customers' receivables at the close, so later corrections to the live marts do not move reported months.

Both read the warehouse read-only inside the `warehouse` pool, so they never meet dbt writing it.
"""

from datetime import UTC, date, datetime
from typing import Any

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TableColumn,
    TableSchema,
    asset,
)

from unified_assets import settings
from unified_assets.lib.dbt_project import dbt_model_key
from unified_assets.lib.handoffs import publish_table
from unified_assets.lib.keys import DATA_PLATFORM
from unified_assets.lib.metadata import markdown_table
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.source_apis import SupportApi
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL, open_warehouse
from unified_assets.redaction import redact_record
from unified_assets.sources.http import SourceError

ENRICHED_P1_TICKETS = AssetKey(["operations", "enriched_p1_tickets"])
MONTH_END_CLOSE = AssetKey(["operations", "month_end_close"])
MARTS = [dbt_model_key("customer_360"), dbt_model_key("sku_demand_daily")]

p1_ticket_partitions = DynamicPartitionsDefinition(name="p1_tickets")
closed_month_partitions = MonthlyPartitionsDefinition(
    start_date=settings.history_start().replace(day=1).isoformat(), timezone="UTC"
)


def enriched_ticket_location(storage: PlatformStorage, ticket_id: int) -> str:
    return storage.operations_place().join("enriched_p1_tickets", f"{ticket_id}.parquet")


def month_end_location(storage: PlatformStorage, month: str) -> str:
    return storage.operations_place().join("month_end_close", f"{month}.parquet")


# ------------------------------------------------------------------------------ enriched P1 tickets


def customer_context(con: duckdb.DuckDBPyConnection, organization_id: Any) -> dict[str, Any]:
    """What finance and procurement know about the customer behind a support organization."""
    found = con.execute(
        """
        select identity.customer_id, customers.customer_name
        from intermediate.int_customer_identity as identity
        left join marts.customer_360 as customers on customers.customer_id = identity.customer_id
        where identity.source_system = 'support'
          and cast(identity.source_customer_id as varchar) = cast($organization as varchar)
        """,
        {"organization": organization_id},
    ).fetchone()
    if found is None or found[0] is None:
        return {"customer_id": None, "customer_name": None, "open_pos": [], "past_due": []}
    customer_id, customer_name = found
    open_pos = con.execute(
        """
        select orders.purchase_order_id, raw.po_number, orders.purchase_order_status,
               orders.ordered_at, orders.ordered_quantity, orders.ordered_amount_usd
        from intermediate.int_purchase_orders as orders
        left join staging.stg_purchasing__purchase_orders as raw
            on raw.purchase_order_id = orders.purchase_order_id
        where orders.customer_id = $customer and orders.is_open
        order by orders.ordered_at
        """,
        {"customer": customer_id},
    ).df()
    past_due = con.execute(
        """
        select invoice_id, invoice_number, due_date, open_balance_usd,
               date_diff('day', due_date, cast(timezone('UTC', current_timestamp) as date))
                   as days_past_due
        from staging.stg_accounting__invoices
        where accounting_customer_id = $customer and invoice_status = 'open'
          and due_date < cast(timezone('UTC', current_timestamp) as date)
        order by due_date
        """,
        {"customer": customer_id},
    ).df()
    return {
        "customer_id": customer_id,
        "customer_name": customer_name,
        "open_pos": open_pos.to_dict("records"),
        "past_due": past_due.to_dict("records"),
    }


def enriched_row(ticket: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    open_pos, past_due = context["open_pos"], context["past_due"]
    return {
        "ticket_id": int(ticket["id"]),
        "subject": ticket.get("subject"),
        "priority": ticket.get("priority"),
        "status": ticket.get("status"),
        "created_at": ticket.get("created_at"),
        "updated_at": ticket.get("updated_at"),
        "support_organization_id": ticket.get("organization_id"),
        "customer_id": context["customer_id"],
        "customer_name": context["customer_name"],
        "open_purchase_order_count": len(open_pos),
        "open_purchase_order_numbers": [str(po["po_number"]) for po in open_pos],
        "open_ordered_amount_usd": round(
            sum(float(po["ordered_amount_usd"]) for po in open_pos), 2
        ),
        "past_due_invoice_count": len(past_due),
        "past_due_invoice_numbers": [str(inv["invoice_number"]) for inv in past_due],
        "past_due_balance_usd": round(sum(float(inv["open_balance_usd"]) for inv in past_due), 2),
        "max_days_past_due": max((int(inv["days_past_due"]) for inv in past_due), default=None),
        "enriched_at": datetime.now(UTC),
    }


@asset(
    key=ENRICHED_P1_TICKETS,
    description=(
        "Priority-1 (urgent) support tickets, one partition per ticket, each next to the customer's open "
        "purchase orders and past-due invoices, so whoever picks up the ticket sees the whole account. "
        "Added by the p1_tickets sensor within one tick of the ticket becoming urgent."
    ),
    group_name="operations",
    owners=[DATA_PLATFORM],
    kinds={"python", "parquet"},
    partitions_def=p1_ticket_partitions,
    pool=WAREHOUSE_POOL,
    deps=MARTS,
)
@holds_its_pool
def enriched_p1_tickets(
    context: AssetExecutionContext, storage: PlatformStorage, support_api: SupportApi
) -> MaterializeResult:
    ticket_id = int(context.partition_key)
    try:
        with support_api.open_client(context.log) as client:
            ticket = client.ticket(ticket_id)
    except SourceError as error:
        raise Failure(description=f"ticket {ticket_id}: {error}") from None
    ticket, redacted = redact_record(ticket)
    with open_warehouse(storage) as con:
        known = customer_context(con, ticket.get("organization_id"))
    row = enriched_row(ticket, known)
    location = enriched_ticket_location(storage, ticket_id)
    import pandas as pd  # here, not at the top: the code location loads without pandas

    publish_table(storage.operations_place(), pd.DataFrame([row]), location)
    who = known["customer_name"] or "an unresolved customer"
    context.log.info(
        f"P1 ticket {ticket_id} ({who}): {row['open_purchase_order_count']} open purchase orders, "
        f"{row['past_due_invoice_count']} past-due invoices ({row['past_due_balance_usd']:.2f} USD)"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": 1,
            "customer": who,
            "open_purchase_orders": row["open_purchase_order_count"],
            "past_due_invoices": row["past_due_invoice_count"],
            "past_due_balance_usd": row["past_due_balance_usd"],
            "pii_redacted": sum(redacted.values()),
            "path": MetadataValue.path(location),
        }
    )


# ---------------------------------------------------------------------------------- month-end close

MONTH_END_COLUMNS = [
    TableColumn("product_sku", "varchar"),
    TableColumn("invoiced_quantity", "double"),
    TableColumn("invoiced_amount", "double"),
    TableColumn("ordered_quantity", "double"),
    TableColumn("ticket_count", "bigint"),
]


def month_bounds(month_key: str) -> tuple[date, date]:
    first = date.fromisoformat(month_key)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


@asset(
    key=MONTH_END_CLOSE,
    description=(
        "The unified demand of a closed month per SKU (invoiced quantity and amount, ordered quantity, "
        "tickets), frozen when the accounting system closes the month's books. Started by the "
        "books_closed sensor; a partition is a month."
    ),
    group_name="operations",
    owners=[DATA_PLATFORM],
    kinds={"python", "parquet"},
    partitions_def=closed_month_partitions,
    pool=WAREHOUSE_POOL,
    deps=MARTS,
)
@holds_its_pool
def month_end_close(context: AssetExecutionContext, storage: PlatformStorage) -> MaterializeResult:
    first, following = month_bounds(context.partition_key)
    with open_warehouse(storage) as con:
        by_sku = con.execute(
            """
            select product_sku,
                   sum(invoiced_quantity) as invoiced_quantity,
                   sum(invoiced_amount) as invoiced_amount,
                   sum(ordered_quantity) as ordered_quantity,
                   sum(ticket_count) as ticket_count
            from marts.sku_demand_daily
            where demand_date >= $first and demand_date < $following
            group by product_sku
            order by product_sku
            """,
            {"first": first, "following": following},
        ).df()
    if by_sku.empty:
        raise Failure(
            description=(
                f"no unified demand for {first:%Y-%m} in the warehouse: extract and transform the "
                "month's days before closing it"
            )
        )
    location = month_end_location(storage, context.partition_key)
    publish_table(storage.operations_place(), by_sku, location)
    context.log.info(
        f"{first:%B %Y} closed: {len(by_sku)} SKUs, invoiced {by_sku['invoiced_amount'].sum():,.2f} USD"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(by_sku),
            "dagster/column_schema": TableSchema(columns=MONTH_END_COLUMNS),
            "invoiced_amount_usd": round(float(by_sku["invoiced_amount"].sum()), 2),
            "ordered_quantity": float(by_sku["ordered_quantity"].sum()),
            "preview": MetadataValue.md(markdown_table(by_sku.head(12))),
            "path": MetadataValue.path(location),
        }
    )
