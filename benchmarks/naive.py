"""Benchmark 5: the naive approach the source article describes, on the same simulator.

Each system is read one after another with `requests` into pandas (every page held in memory), the
three frames are merged in memory on the customer's name as each system spells it, and the result is
one table of invoiced quantity, ordered quantity and ticket count per customer. No incremental state,
no deduplication of versions, no identity resolution, no landing: what a notebook does.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import pandas as pd
import requests

from benchmarks.simulator import RunningSimulator


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def read_invoices(sim: RunningSimulator, start: date, end: date, session: requests.Session) -> list:
    creds = sim.credentials
    token = session.post(
        sim.token_url,
        data={"grant_type": "refresh_token", "refresh_token": creds.qbo_refresh_token},
        auth=(creds.qbo_client_id, creds.qbo_client_secret),
        timeout=30,
    ).json()["access_token"]
    url = f"{sim.base_urls['accounting']}/v3/company/{creds.realm_id}/query"
    window = (
        f"Metadata.LastUpdatedTime >= '{_iso(start)}' and Metadata.LastUpdatedTime < '{_iso(end)}'"
    )
    invoices: list = []
    while True:
        statement = (
            f"select * from Invoice where {window} ORDERBY Metadata.LastUpdatedTime "
            f"STARTPOSITION {len(invoices) + 1} MAXRESULTS 1000"
        )
        response = session.get(
            url,
            params={"query": statement},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=60,
        )
        response.raise_for_status()
        rows = response.json()["QueryResponse"].get("Invoice", [])
        invoices += rows
        if len(rows) < 1000:
            return invoices


def read_purchase_orders(
    sim: RunningSimulator, start: date, end: date, session: requests.Session
) -> list:
    orders: list = []
    while True:
        response = session.get(
            f"{sim.base_urls['purchasing']}/api/purchase_orders",
            params={
                "updated-at[gt_or_eq]": _iso(start),
                "updated-at[lt]": _iso(end),
                "order_by": "updated_at",
                "dir": "asc",
                "offset": len(orders),
                "limit": 50,
            },
            headers={"X-COUPA-API-KEY": sim.credentials.coupa_api_key},
            timeout=60,
        )
        response.raise_for_status()
        page = response.json()
        orders += page
        if len(page) < 50:
            return orders


def read_tickets(sim: RunningSimulator, start: date, end: date, session: requests.Session) -> list:
    creds = sim.credentials
    auth = (f"{creds.zendesk_email}/token", creds.zendesk_api_token)
    url = f"{sim.base_urls['support']}/api/v2/incremental/tickets/cursor.json"
    params: dict | None = {"start_time": _epoch(start), "per_page": 1000}
    tickets: list = []
    while True:
        response = session.get(url, params=params, auth=auth, timeout=60)
        response.raise_for_status()
        body = response.json()
        tickets += [t for t in body["tickets"] if t["updated_at"] < _iso(end)]
        if body["end_of_stream"]:
            return tickets
        url, params = body["after_url"], None


def _epoch(day: date) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def merge_in_memory(invoices: list, orders: list, tickets: list) -> pd.DataFrame:
    """Flatten each system's records with pandas and join them on the customer name."""
    lines = pd.json_normalize(invoices, record_path="Line", meta=[["CustomerRef", "name"]])
    lines = lines[lines["DetailType"] == "SalesItemLineDetail"]
    invoiced = lines.groupby("CustomerRef.name")["SalesItemLineDetail.Qty"].sum()
    order_lines = pd.json_normalize(
        orders, record_path="order-lines", meta=[["ship-to-address", "name"]]
    )
    ordered = (
        order_lines.assign(quantity=order_lines["quantity"].astype(float))
        .groupby("ship-to-address.name")["quantity"]
        .sum()
    )
    frame = pd.DataFrame(tickets)
    organisation = frame["custom_fields"].map(
        lambda fields: fields[1]["value"] if len(fields) > 1 else None
    )
    ticket_count = organisation.value_counts()
    merged = pd.concat(
        {
            "invoiced_qty": invoiced.rename(index=str.lower),
            "ordered_qty": ordered.rename(index=str.lower),
            "tickets": ticket_count.rename(index=str.lower),
        },
        axis=1,
    )
    return merged.fillna(0)


def run_naive(sim: RunningSimulator, first_day: str, last_day: str) -> tuple[float, dict[str, int]]:
    """Wall time of read-everything-then-merge, and how much it read and produced."""
    start = date.fromisoformat(first_day)
    end = date.fromisoformat(last_day) + timedelta(days=1)
    started = time.perf_counter()
    with requests.Session() as session:
        invoices = read_invoices(sim, start, end, session)
        orders = read_purchase_orders(sim, start, end, session)
        tickets = read_tickets(sim, start, end, session)
    merged = merge_in_memory(invoices, orders, tickets)
    seconds = time.perf_counter() - started
    sizes = {
        "invoices": len(invoices),
        "purchase_orders": len(orders),
        "tickets": len(tickets),
        "merged_rows": len(merged),
    }
    return seconds, sizes
