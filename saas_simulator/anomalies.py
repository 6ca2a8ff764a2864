"""Batch anomalies the simulator produces on request: one day of one system served subtly wrong.

Faults (`faults.py`) break the transport; these keep every answer well-formed and change what a day's
records say, the way real upstream incidents do: a customer's invoices stop syncing, a currency switch
doubles every amount, an integration writes one value into a field, a SKU gets a new code, half a day
is lost. They are what the platform's batch anomaly check must catch (docs/data-quality.md), and the
evaluation injects them into the records the API serves for a day (`inject`).

Every kind is deterministic: the same records give the same altered records.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

ANOMALY_KINDS = (
    "customer_missing",  # every record of the day's largest customer is gone
    "amounts_doubled",  # prices, line amounts and totals are twice what they were
    "field_stuck",  # one field that varies holds one value in every record (see STUCK_FIELDS)
    "sku_renamed",  # the day's most frequent SKU arrives under a new code, same item id
    "volume_halved",  # every second record (by id) is gone
)

# The field each system's `field_stuck` fixes, and the value it is stuck at.
STUCK_FIELDS = {
    "accounting": ("Line[].SalesItemLineDetail.Qty", 1),
    "purchasing": ("order-lines[].quantity", "1.0"),
    "support": ("priority", "normal"),
}
# What a SKU's new code looks like: the old code with this suffix.
RENAMED_SUFFIX = "-R2"

Record = dict[str, Any]


def applicable_kinds(system: str) -> tuple[str, ...]:
    """Support tickets carry no amounts and no SKUs."""
    if system == "support":
        return ("customer_missing", "field_stuck", "volume_halved")
    return ANOMALY_KINDS


def inject(system: str, kind: str, records: list[Record]) -> list[Record]:
    """The day's `records` (as the API serves them) with anomaly `kind`; the input is not changed."""
    if kind not in applicable_kinds(system):
        raise ValueError(
            f"anomaly {kind!r} does not apply to {system}; use one of "
            f"{', '.join(applicable_kinds(system))}"
        )
    altered = copy.deepcopy(records)
    if kind == "customer_missing":
        return _without_largest_customer(system, altered)
    if kind == "volume_halved":
        return sorted(altered, key=lambda record: int(_id(system, record)))[::2]
    change = _renaming(system, altered) if kind == "sku_renamed" else _CHANGES[system][kind]
    for record in altered:
        change(record)
    return altered


def _id(system: str, record: Record) -> Any:
    return record["Id" if system == "accounting" else "id"]


def customer_of(system: str, record: Record) -> str | None:
    """The customer a record belongs to, in each vendor's own field."""
    if system == "accounting":
        return (record.get("CustomerRef") or {}).get("value")
    if system == "purchasing":
        return (record.get("custom-fields") or {}).get("customer-account")
    return None if record.get("organization_id") is None else str(record["organization_id"])


def _without_largest_customer(system: str, records: list[Record]) -> list[Record]:
    counts = Counter(c for record in records if (c := customer_of(system, record)) is not None)
    if not counts:
        return records
    largest = min(counts, key=lambda customer: (-counts[customer], customer))
    return [record for record in records if customer_of(system, record) != largest]


# --- accounting (QuickBooks invoices) -------------------------------------------------------------


def _sales_lines(invoice: Record) -> list[Record]:
    return [line for line in invoice.get("Line", []) if "SalesItemLineDetail" in line]


def _double_invoice(invoice: Record) -> None:
    for line in invoice.get("Line", []):
        line["Amount"] = round(line["Amount"] * 2, 2)
        detail = line.get("SalesItemLineDetail")
        if detail and "UnitPrice" in detail:
            detail["UnitPrice"] = round(detail["UnitPrice"] * 2, 4)
    for field in ("TotalAmt", "Balance"):
        if field in invoice:
            invoice[field] = round(invoice[field] * 2, 2)


def _stick_invoice_quantity(invoice: Record) -> None:
    for line in _sales_lines(invoice):
        line["SalesItemLineDetail"]["Qty"] = STUCK_FIELDS["accounting"][1]


# --- purchasing (Coupa purchase orders) -----------------------------------------------------------


def _money(text: str, factor: float) -> str:
    return f"{float(text) * factor:.2f}"


def _double_order(order: Record) -> None:
    for line in order.get("order-lines", []):
        line["price"] = _money(line["price"], 2)
        line["total"] = _money(line["total"], 2)


def _stick_order_quantity(order: Record) -> None:
    for line in order.get("order-lines", []):
        line["quantity"] = STUCK_FIELDS["purchasing"][1]


# --- support (Zendesk tickets) --------------------------------------------------------------------


def _stick_priority(ticket: Record) -> None:
    ticket["priority"] = STUCK_FIELDS["support"][1]


# --- SKU codes ------------------------------------------------------------------------------------


def _sku_holders(system: str, record: Record) -> list[tuple[Record, str]]:
    """(object, key) pairs holding a record's SKU codes: QuickBooks' ItemRef name, Coupa's item number."""
    if system == "accounting":
        return [(line["SalesItemLineDetail"]["ItemRef"], "name") for line in _sales_lines(record)]
    return [
        (line["item"], "item-number") for line in record.get("order-lines", []) if "item" in line
    ]


def _renaming(system: str, records: list[Record]) -> Callable[[Record], None]:
    counts = Counter(
        holder[key] for record in records for holder, key in _sku_holders(system, record)
    )
    if not counts:
        return lambda record: None
    renamed = min(counts, key=lambda code: (-counts[code], code))

    def rename(record: Record) -> None:
        for holder, key in _sku_holders(system, record):
            if holder[key] == renamed:
                holder[key] = renamed + RENAMED_SUFFIX

    return rename


_CHANGES: dict[str, dict[str, Callable[[Record], None]]] = {
    "accounting": {"amounts_doubled": _double_invoice, "field_stuck": _stick_invoice_quantity},
    "purchasing": {"amounts_doubled": _double_order, "field_stuck": _stick_order_quantity},
    "support": {"field_stuck": _stick_priority},
}
