"""Purchasing as Coupa speaks it: a bare JSON array, hyphenated keys, decimals as strings.

`GET /api/purchase_orders?updated-at[gt_or_eq]=...&updated-at[lt]=...&order_by=updated_at&dir=asc
&offset=0&limit=50` with `X-COUPA-API-KEY`. Filters are `<field>[<operator>]=<value>` with Coupa's
operators; at most 50 records a page. `GET`/`PUT /api/items/:id` read and write an item's custom fields
(where the platform writes safety stock back).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from saas_simulator.generate import PO_EVENTS
from saas_simulator.items import ItemStore
from saas_simulator.names import CURRENCIES
from saas_simulator.protocol import ApiRequest, ApiResponse, BadRequest, ServeContext
from saas_simulator.tables import TOUCH, SystemView
from saas_simulator.timeutil import iso_z, ordinal_iso, parse_moment

if TYPE_CHECKING:
    from saas_simulator.worldview import WorldView

SYSTEM = "purchasing"
MAX_LIMIT = 50
CREATED, ISSUED, REVISED, EXPORTED, CANCELLED, CLOSED = range(len(PO_EVENTS))
OPERATORS = ("gt", "lt", "gt_or_eq", "lt_or_eq", "not_eq", "in")
FILTER_FIELDS = {
    "updated-at": "updated",
    "updated_at": "updated",
    "created-at": "created",
    "created_at": "created",
    "id": "id",
    "status": "status",
    "exported": "exported",
    "po-number": "po_number",
    "po_number": "po_number",
}
ORDER_FIELDS = {
    "updated_at": "updated",
    "updated-at": "updated",
    "created_at": "created",
    "created-at": "created",
    "id": "id",
}
IGNORED_PARAMETERS = {"return_object", "fields"}
STATUSES = ("buyer_hold", "issued", "cancelled", "closed")

# ---------------------------------------------------------------------------------------- rendering


def po_number(record: int) -> str:
    return str(5001 + record)


def render_purchase_orders(
    world: WorldView, view: SystemView, records: np.ndarray, versions: np.ndarray
) -> list[dict]:
    """The wire dicts of the given (record, version) pairs, exactly as the API returns them."""
    table = view.table
    cols = table.records
    customers, products, suppliers = (
        world.catalog.customers,
        world.catalog.products,
        world.catalog.suppliers,
    )
    out = []
    for record, version in zip(records.tolist(), versions.tolist(), strict=True):
        events = view.events(record, version)
        kinds = {kind for _, kind in events}
        customer = int(cols["customer"][record])
        supplier = int(cols["supplier"][record])
        created, updated = iso_z(int(cols["created"][record])), iso_z(events[-1][0])
        lines_slice = table.line_slice(record)
        qtys = table.lines["qty"][lines_slice].tolist()
        if REVISED in kinds:
            qtys[int(cols["revise_line"][record])] = int(cols["revise_qty"][record])
        closed = CLOSED in kinds
        need_by = f"{ordinal_iso(int(cols['need_by_day'][record]))}T00:00:00Z"
        order_lines = []
        first_line_id = int(table.line_offsets[record]) + 1
        for number, (sku, qty, price) in enumerate(
            zip(
                table.lines["sku"][lines_slice].tolist(),
                qtys,
                table.lines["price"][lines_slice].tolist(),
                strict=True,
            )
        ):
            order_lines.append(
                {
                    "id": first_line_id + number,
                    "line-num": number + 1,
                    "description": products.name[sku],
                    "quantity": f"{qty:.1f}",
                    "price": f"{price:.2f}",
                    "total": f"{qty * price:.2f}",
                    "received": f"{qty:.1f}" if closed else "0.0",
                    "need-by-date": need_by,
                    "item": {
                        "id": int(products.coupa_item_id[sku]),
                        "item-number": products.coupa_item_number[sku],
                        "name": products.name[sku],
                    },
                    "source-part-num": products.source_part_num[sku],
                    "created-at": created,
                    "updated-at": updated,
                }
            )
        custom_fields: dict[str, Any] = {"customer-account": customers.coupa_account[customer]}
        exported = EXPORTED in kinds
        if exported:
            custom_fields["erp-batch"] = "ERP-" + iso_z(int(cols["exported"][record]))[:7]
        order: dict[str, Any] = {
            "id": record + 1,
            "created-at": created,
            "updated-at": updated,
            "po-number": po_number(record),
            "version": 1 + (REVISED in kinds),
            "status": _status(kinds),
            "exported": exported,
            "currency": {
                "id": int(cols["currency"][record]) + 1,
                "code": CURRENCIES[int(cols["currency"][record])],
            },
            "payment-method": "invoice",
            "supplier": {
                "id": int(suppliers.coupa_id[supplier]),
                "name": suppliers.name[supplier],
                "number": suppliers.number[supplier],
            },
            "ship-to-address": {
                "id": 7001 + customer,
                "name": customers.coupa_name[customer],
                "street1": customers.street[customer],
                "city": customers.city[customer],
                "postal-code": customers.postal_code[customer],
                "country": {"code": customers.country[customer]},
            },
            "custom-fields": custom_fields,
            "order-lines": order_lines,
            "updated-by": {"id": 2, "login": "coupa-integration"}
            if TOUCH in kinds
            else {"id": 11, "login": "buyer"},
        }
        out.append(order)
    return out


def _status(kinds: set[int]) -> str:
    if CANCELLED in kinds:
        return "cancelled"
    if CLOSED in kinds:
        return "closed"
    return "issued" if ISSUED in kinds else "buyer_hold"


def apply_drift(orders: list[dict], mode: str) -> list[dict]:
    for order in orders:
        if mode == "new_field":
            order["payment-term"] = {"code": "Net 30", "days-for-net-payment": 30}
        elif mode == "renamed_field":
            order["ship_to_address"] = order.pop("ship-to-address")
        elif mode == "changed_type":
            for line in order["order-lines"]:
                for key in ("quantity", "price", "total", "received"):
                    line[key] = float(line[key])
    return orders


# ------------------------------------------------------------------------------------------- errors


def error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, {"errors": {"error": [message]}}, headers=headers or {})


def auth_failed() -> ApiResponse:
    return error(401, "Invalid API key")


def throttled() -> ApiResponse:
    return error(429, "Rate limit exceeded")


def server_error(status: int) -> ApiResponse:
    return error(
        status,
        {500: "We're sorry, but something went wrong.", 502: "Bad Gateway"}.get(
            status, "Service Unavailable"
        ),
    )


def not_found() -> ApiResponse:
    return error(404, "Record not found")


# ---------------------------------------------------------------------------------------- execution


def handle_list(request: ApiRequest, ctx: ServeContext) -> ApiResponse:
    try:
        params = _parse(request.query)
        view = ctx.world.view(SYSTEM, ctx.now)
        positions = _matching(view, params, ctx.now)
    except BadRequest as problem:
        return error(400, str(problem))
    begin = params["offset"]
    if ctx.duplicates and begin > 0:
        ctx.applied.add("duplicate_records")
        begin = max(0, begin - ctx.duplicates)
    page = positions[begin : params["offset"] + params["limit"]]
    records, versions = view.index.record[page], view.index.version[page]
    orders = render_purchase_orders(ctx.world, view, records, versions)
    if ctx.drift:
        apply_drift(orders, ctx.drift)
    return ApiResponse(200, orders, records=records.tolist())


def handle_one(request: ApiRequest, ctx: ServeContext, record_id: str) -> ApiResponse:
    if not record_id.isdigit():
        return not_found()
    view = ctx.world.view(SYSTEM, ctx.now)
    position = (
        view.index.visible_position_of(ctx.now, int(record_id) - 1) if int(record_id) >= 1 else None
    )
    if position is None:
        return not_found()
    record, version = view.index.record[[position]], view.index.version[[position]]
    order = render_purchase_orders(ctx.world, view, record, version)
    if ctx.drift:
        apply_drift(order, ctx.drift)
    return ApiResponse(200, order[0], records=record.tolist())


def _parse(query: dict[str, list[str]]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "filters": [],
        "offset": 0,
        "limit": MAX_LIMIT,
        "order": None,
        "descending": False,
    }
    for name, values in query.items():
        value = values[-1]
        if name == "offset":
            params["offset"] = _non_negative(value, "offset")
        elif name == "limit":
            params["limit"] = _non_negative(value, "limit")
            if not 1 <= params["limit"] <= MAX_LIMIT:
                raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}, got {value!r}")
        elif name == "order_by":
            if value not in ORDER_FIELDS:
                raise BadRequest(f"cannot order by {value!r}; use updated_at, created_at or id")
            params["order"] = ORDER_FIELDS[value]
        elif name == "dir":
            if value.lower() not in ("asc", "desc"):
                raise BadRequest(f"dir must be asc or desc, got {value!r}")
            params["descending"] = value.lower() == "desc"
        elif name in IGNORED_PARAMETERS:
            continue
        else:
            params["filters"].append(_filter(name, value))
    return params


def _filter(name: str, value: str) -> tuple[str, str, str]:
    field_name, _, operator = name.partition("[")
    operator = operator.rstrip("]") if operator else "eq"
    if field_name not in FILTER_FIELDS:
        raise BadRequest(f"unknown query parameter {name!r}")
    if operator != "eq" and operator not in OPERATORS:
        raise BadRequest(
            f"unknown operator {operator!r} in {name!r}; use one of {', '.join(OPERATORS)}"
        )
    return FILTER_FIELDS[field_name], operator, value


def _non_negative(value: str, name: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _matching(view: SystemView, params: dict[str, Any], now: float) -> np.ndarray:
    start, end = None, None
    for field_name, operator, value in params["filters"]:
        if field_name == "updated":
            start, end = _narrow(start, end, operator, _moment(value))
    positions = view.index.visible(now, start, end)
    records = view.index.record[positions]
    version_ts = view.index.ts[positions]
    cols = view.table.records
    keep = np.ones(len(positions), dtype=bool)
    for field_name, operator, value in params["filters"]:
        if field_name == "created":
            low, high = _narrow(None, None, operator, _moment(value))
            keep &= _between(cols["created"][records], low, high)
        elif field_name == "id":
            keep &= _compare(records + 1, operator, [_int(v) for v in value.split(",")])
        elif field_name == "po_number":
            keep &= _compare(records + 5001, operator, [_int(v) for v in value.split(",")])
        elif field_name == "status":
            statuses = _status_at(cols, records, version_ts)
            wanted = value.split(",") if operator in ("in", "eq") else [value]
            unknown = [s for s in wanted if s not in STATUSES]
            if unknown:
                raise BadRequest(f"unknown status {unknown[0]!r}; use one of {', '.join(STATUSES)}")
            codes = [STATUSES.index(s) for s in wanted]
            match = np.isin(statuses, codes)
            keep &= ~match if operator == "not_eq" else match
        elif field_name == "exported":
            if value not in ("true", "false"):
                raise BadRequest(f"exported must be true or false, got {value!r}")
            exported = cols["exported"][records] <= version_ts
            keep &= exported if value == "true" else ~exported
    positions, records = positions[keep], records[keep]
    order = params["order"]
    if order is None or order == "id":
        positions = positions[np.argsort(records, kind="stable")]
    elif order == "created":
        positions = positions[np.lexsort((records, cols["created"][records]))]
    return positions[::-1] if params["descending"] else positions


def _status_at(cols: dict[str, np.ndarray], records: np.ndarray, moments: np.ndarray) -> np.ndarray:
    status = np.where(cols["issued"][records] <= moments, 1, 0)
    status = np.where(cols["closed"][records] <= moments, 3, status)
    return np.where(cols["cancelled"][records] <= moments, 2, status)


def _narrow(start, end, operator: str, moment: float):
    low, high = {
        "gt": (math.floor(moment) + 1, None),
        "gt_or_eq": (moment, None),
        "lt": (None, moment),
        "lt_or_eq": (None, math.floor(moment) + 1),
        "eq": (moment, math.floor(moment) + 1),
    }.get(operator, (None, None))
    if operator in ("not_eq", "in"):
        raise BadRequest(f"operator {operator!r} is not supported on dates")
    if low is not None:
        start = low if start is None else max(start, low)
    if high is not None:
        end = high if end is None else min(end, high)
    return start, end


def _between(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    keep = np.ones(len(values), dtype=bool)
    if low is not None:
        keep &= values >= math.ceil(low)
    if high is not None:
        keep &= values < math.ceil(high)
    return keep


def _compare(values: np.ndarray, operator: str, targets: list[int]) -> np.ndarray:
    if operator in ("eq", "in"):
        return np.isin(values, targets)
    if operator == "not_eq":
        return ~np.isin(values, targets)
    target = targets[0]
    return {
        "gt": values > target,
        "lt": values < target,
        "gt_or_eq": values >= target,
        "lt_or_eq": values <= target,
    }[operator]


def _moment(value: str) -> float:
    try:
        return parse_moment(value)
    except ValueError as problem:
        raise BadRequest(str(problem)) from None


def _int(value: str) -> int:
    if not value.strip().isdigit():
        raise BadRequest(f"expected an integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------- items


def handle_item(
    request: ApiRequest, ctx: ServeContext, item_id: str, store: ItemStore
) -> ApiResponse:
    """`GET /api/items/:id` and `PUT /api/items/:id` with `{"custom-fields": {...}}` (other keys are
    read-only here)."""
    products = ctx.world.catalog.products
    ids = products.coupa_item_id
    if not item_id.isdigit() or int(item_id) not in set(ids.tolist()):
        return not_found()
    sku = int(np.flatnonzero(ids == int(item_id))[0])
    if request.method == "PUT":
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return ApiResponse(400, {"errors": {"base": ["The request body is not valid JSON"]}})
        fields = payload.get("custom-fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict) or not all(
            isinstance(v, int | float | str) for v in fields.values()
        ):
            return ApiResponse(
                422, {"errors": {"custom-fields": ["must be an object of scalar values"]}}
            )
        custom, _ = store.update(int(item_id), fields, iso_z(int(ctx.now)))
    else:
        custom = store.custom_fields(int(item_id))
    return ApiResponse(
        200,
        {
            "id": int(item_id),
            "item-number": products.coupa_item_number[sku],
            "name": products.name[sku],
            "active": True,
            "custom-fields": custom,
        },
    )
