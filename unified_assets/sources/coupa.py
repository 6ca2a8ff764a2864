"""Purchase orders from Coupa's REST API.

Coupa lists resources as a bare JSON array, filters with bracketed operators on hyphenated field names
(`updated-at[gt_or_eq]=...`), pages by `offset`/`limit` with at most 50 records a page, and authenticates
with an API key in the `X-COUPA-API-KEY` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from unified_assets.sources.http import HttpPolicy, JsonApi, SourceError, describe_endpoint
from unified_assets.sources.paging import (
    ClosedOnExit,
    KeysetCursor,
    Page,
    Window,
    check_record_ids,
    iso_utc,
    record_timestamp,
    walk_keyset,
)
from unified_assets.sources.projection import Column, Lines, projection

SYSTEM = "purchasing (Coupa)"
MAX_PAGE_SIZE = 50

# DuckDB SELECT list turning one purchase order (column `json`) into the typed columns of
# raw/purchase_orders. Coupa sends decimals as strings; `_raw` keeps everything.
RAW_COLUMNS = projection(
    [
        Column("id", "$.id"),
        Column("updated_at", '$."updated-at"', "timestamptz", strict=True),
        Column("created_at", '$."created-at"', "timestamptz"),
        Column("po_number", '$."po-number"'),
        Column("status", "$.status"),
        Column("currency_code", "$.currency.code"),
        Column("supplier_id", "$.supplier.id"),
        Column("supplier_name", "$.supplier.name"),
        Column("ship_to_name", '$."ship-to-address".name'),
        Column("customer_account", '$."custom-fields"."customer-account"'),
    ],
    Lines(
        "lines",
        '$."order-lines"[*]',
        [
            Column("line_id", "$.id"),
            Column("line_num", '$."line-num"', "integer"),
            Column("item_id", "$.item.id"),
            Column("item_number", '$.item."item-number"'),
            Column("item_name", "$.item.name"),
            Column("quantity", "$.quantity", "double"),
            Column("price", "$.price", "decimal(18, 4)"),
            Column("need_by_date", '$."need-by-date"', "timestamptz"),
        ],
    ),
)


def purchase_order_updated_at(order: dict[str, Any]) -> datetime:
    return record_timestamp(order, ("updated-at",), SYSTEM, id_field="id")


class CoupaClient(ClosedOnExit):
    """Reads purchase orders updated in a window, oldest update first; reads and writes items' custom
    fields (where safety stock goes back)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        policy: HttpPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"Coupa page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/api/purchase_orders"
        self.page_size = page_size
        self.api = JsonApi(SYSTEM, policy or HttpPolicy(), headers={"X-COUPA-API-KEY": api_key})

    def close(self) -> None:
        self.api.close()

    def item_custom_fields(self, item_id: int) -> dict[str, Any]:
        """An item's custom fields (`GET /api/items/:id`)."""
        response = self.api.get_json(self._item_url(item_id), where=f"item {item_id}")
        return self._custom_fields(response.body, item_id)

    def set_item_custom_fields(self, item_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Set some of an item's custom fields (`PUT /api/items/:id`); returns all of them after."""
        response = self.api.put_json(
            self._item_url(item_id), {"custom-fields": fields}, where=f"item {item_id}"
        )
        return self._custom_fields(response.body, item_id)

    def _item_url(self, item_id: int) -> str:
        return f"{self.base_url}/api/items/{int(item_id)}"

    def _custom_fields(self, body: Any, item_id: int) -> dict[str, Any]:
        fields = body.get("custom-fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            raise SourceError(
                f"{SYSTEM}: item {item_id} came back without an object of custom fields "
                f"({describe_endpoint(self._item_url(item_id))})"
            )
        return fields

    def extract(self, window: Window) -> Iterator[Page]:
        return walk_keyset(window, self.page_size, self._fetch(window), purchase_order_updated_at)

    def _fetch(self, window: Window):
        def fetch(cursor: KeysetCursor, limit: int) -> tuple[list[dict[str, Any]], int, float]:
            params = {
                "updated-at[gt_or_eq]": iso_utc(cursor.since),
                "updated-at[lt]": iso_utc(window.end),
                "order_by": "updated_at",
                "dir": "asc",
                "offset": cursor.skip,
                "limit": limit,
            }
            response = self.api.get_json(self.url, params=params, where=f"offset {cursor.skip}")
            if not isinstance(response.body, list):
                raise SourceError(
                    f"{SYSTEM}: expected a JSON array of purchase orders, got "
                    f"{type(response.body).__name__} (GET {describe_endpoint(self.url)}, "
                    f"offset {cursor.skip})"
                )
            request = f"GET {describe_endpoint(self.url)}, offset {cursor.skip}"
            check_record_ids(response.body, "id", SYSTEM, request)
            return response.body, response.retries, response.elapsed_s

        return fetch
