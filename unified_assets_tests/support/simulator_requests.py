"""Minimal, independent vendor clients for the simulator tests: plain `requests`, no project code.

They page the way each vendor documents, so the tests check the wire contract rather than the
project's own connectors. `RetryingClient` adds what a correct production client does about faults:
retry 429/5xx/broken bodies/dropped connections, refresh an expired QuickBooks token, de-duplicate.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pandas as pd
import requests

from saas_simulator import SimulatorServer


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def qbo_token(server: SimulatorServer) -> str:
    creds = server.credentials
    response = requests.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": creds.qbo_refresh_token},
        auth=(creds.qbo_client_id, creds.qbo_client_secret),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def qbo_query(
    server: SimulatorServer, token: str, statement: str, timeout: float = 10
) -> requests.Response:
    url = f"{server.base_urls['accounting']}/v3/company/{server.credentials.realm_id}/query"
    return requests.get(
        url,
        params={"query": statement, "minorversion": "75"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=timeout,
    )


def qbo_window(start: datetime, end: datetime) -> str:
    return f"Metadata.LastUpdatedTime >= '{iso(start)}' and Metadata.LastUpdatedTime < '{iso(end)}'"


def qbo_all(
    server: SimulatorServer, start: datetime, end: datetime, page: int = 1000
) -> list[dict]:
    """Every invoice updated in [start, end) by STARTPOSITION paging (exact with a frozen clock)."""
    token = qbo_token(server)
    invoices: list[dict] = []
    position = 1
    while True:
        statement = (
            f"select * from Invoice where {qbo_window(start, end)} "
            f"ORDERBY Metadata.LastUpdatedTime STARTPOSITION {position} MAXRESULTS {page}"
        )
        response = qbo_query(server, token, statement)
        response.raise_for_status()
        rows = response.json()["QueryResponse"].get("Invoice", [])
        invoices += rows
        if len(rows) < page:
            return invoices
        position += page


def coupa_get(server: SimulatorServer, params: dict, key: str | None = None) -> requests.Response:
    return requests.get(
        f"{server.base_urls['purchasing']}/api/purchase_orders",
        params=params,
        headers={
            "X-COUPA-API-KEY": key or server.credentials.coupa_api_key,
            "Accept": "application/json",
        },
        timeout=10,
    )


def coupa_window(start: datetime, end: datetime, offset: int, limit: int = 50) -> dict:
    return {
        "updated-at[gt_or_eq]": iso(start),
        "updated-at[lt]": iso(end),
        "order_by": "updated_at",
        "dir": "asc",
        "offset": offset,
        "limit": limit,
    }


def coupa_all(
    server: SimulatorServer, start: datetime, end: datetime, limit: int = 50
) -> list[dict]:
    orders: list[dict] = []
    while True:
        response = coupa_get(server, coupa_window(start, end, len(orders), limit))
        response.raise_for_status()
        page = response.json()
        orders += page
        if len(page) < limit:
            return orders


def zendesk_auth(server: SimulatorServer) -> tuple[str, str]:
    creds = server.credentials
    return (f"{creds.zendesk_email}/token", creds.zendesk_api_token)


def zendesk_export(server: SimulatorServer, params: dict | None = None, url: str | None = None):
    target = url or f"{server.base_urls['support']}/api/v2/incremental/tickets/cursor.json"
    return requests.get(target, params=params, auth=zendesk_auth(server), timeout=10)


def zendesk_all(server: SimulatorServer, start_time: int, per_page: int = 1000) -> list[dict]:
    """The whole stream from start_time, following after_url until end_of_stream."""
    response = zendesk_export(server, {"start_time": start_time, "per_page": per_page})
    tickets: list[dict] = []
    while True:
        response.raise_for_status()
        body = response.json()
        tickets += body["tickets"]
        if body["end_of_stream"]:
            return tickets
        response = zendesk_export(server, url=body["after_url"])


class RetryingClient:
    """Pages one system through faults: what a correct client must do to obtain everything."""

    RETRYABLE = frozenset({429, 500, 502, 503})

    def __init__(self, server: SimulatorServer, timeout_s: float = 1.0, attempts: int = 12):
        self.server = server
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.retries = 0
        self.token = ""
        self.refreshes = 0

    def get(self, system: str, url: str, params: dict | None) -> object:
        for _ in range(self.attempts):
            headers = self._headers(system)
            try:
                auth = zendesk_auth(self.server) if system == "support" else None
                response = requests.get(
                    url, params=params, headers=headers, auth=auth, timeout=self.timeout_s
                )
            except (requests.ConnectionError, requests.Timeout):
                self.retries += 1
                continue
            if response.status_code == 401 and system == "accounting":
                self.token = ""
                self.retries += 1
                continue
            if response.status_code in self.RETRYABLE or response.status_code == 401:
                self.retries += 1
                time.sleep(min(float(response.headers.get("Retry-After", 0)), 0.05))
                continue
            if "json" not in response.headers.get("Content-Type", ""):
                self.retries += 1
                continue
            try:
                return json.loads(response.content)
            except ValueError:
                self.retries += 1
        raise AssertionError(f"gave up on {url} after {self.attempts} attempts")

    def _headers(self, system: str) -> dict[str, str]:
        if system == "accounting":
            if not self.token:
                self.token = qbo_token(self.server)
                self.refreshes += 1
            return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if system == "purchasing":
            return {"X-COUPA-API-KEY": self.server.credentials.coupa_api_key}
        return {}

    def invoices(self, start: datetime, end: datetime, page: int) -> list[dict]:
        realm = self.server.credentials.realm_id
        url = f"{self.server.base_urls['accounting']}/v3/company/{realm}/query"

        def fetch(since: datetime, skip: int) -> list[dict]:
            statement = (
                f"select * from Invoice where {qbo_window(since, end)} "
                f"ORDERBY Metadata.LastUpdatedTime STARTPOSITION {skip + 1} MAXRESULTS {page}"
            )
            return self.get("accounting", url, {"query": statement})["QueryResponse"].get(
                "Invoice", []
            )

        return keyset_walk(start, page, fetch, lambda r: r["MetaData"]["LastUpdatedTime"])

    def purchase_orders(self, start: datetime, end: datetime, limit: int) -> list[dict]:
        url = f"{self.server.base_urls['purchasing']}/api/purchase_orders"

        def fetch(since: datetime, skip: int) -> list[dict]:
            return self.get("purchasing", url, coupa_window(since, end, skip, limit))

        return keyset_walk(start, limit, fetch, lambda r: r["updated-at"])

    def tickets(self, start_time: int, per_page: int) -> list[dict]:
        url = f"{self.server.base_urls['support']}/api/v2/incremental/tickets/cursor.json"
        body = self.get("support", url, {"start_time": start_time, "per_page": per_page})
        rows = list(body["tickets"])
        while not body["end_of_stream"]:
            body = self.get("support", body["after_url"], None)
            rows += body["tickets"]
        return rows


KEYSET_OVERLAP = 3


def keyset_walk(start: datetime, page: int, fetch, stamp) -> list[dict]:
    """Offset paging made safe against records moving mid-walk: restart from the newest timestamp
    seen.

    A plain offset walk loses records when earlier ones are updated while it pages (they leave their
    place and everything behind them shifts forward). Asking for `>= newest timestamp read` and
    skipping only what was read at that timestamp (less a small overlap) keeps every record within
    reach.
    """
    rows: list[dict] = []
    since, skip = start, 0
    while True:
        batch = fetch(since, skip)
        rows += batch
        if len(batch) < page:
            return rows
        newest = pd.Timestamp(stamp(batch[-1])).to_pydatetime()
        if newest == since:
            skip += page
        else:
            at_newest = {id(r) for r in batch if pd.Timestamp(stamp(r)).to_pydatetime() == newest}
            since, skip = newest, len(at_newest)
        skip = max(0, skip - KEYSET_OVERLAP)
