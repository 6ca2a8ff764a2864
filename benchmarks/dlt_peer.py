"""The extraction benchmark's peer: the three vendors' APIs read with dlt, as a dlt user would write it.

dlt's `rest_api` source (a `RESTAPIConfig`) with each vendor's real authentication and paging as the
simulator serves them, incremental on the update timestamp between a window's bounds, loaded into DuckDB
as Parquet (`loader_file_format="parquet"`, the one setting away from dlt's defaults). Three things are
beyond what dlt ships, so three small classes plug into the config, as dlt's documentation shows: Intuit's
refresh-token grant (an `OAuth2ClientCredentials` subclass), QuickBooks' paging inside its query text and
Zendesk's `end_of_stream` (paginators). Each pipeline starts from nothing (its own pipelines folder and
DuckDB file), so every run reads the whole window.

Only the benchmarks import this module: dlt is the `bench` extra, never a dependency of the platform. Nor
does it import the platform or the simulator: a dlt worker's memory is dlt's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import BasePaginator, JSONResponseCursorPaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_source
from requests import Request, Response

DATASET = "raw"
QUICKBOOKS_PAGE = 1000  # MAXRESULTS at most 1000
COUPA_PAGE = 50  # limit at most 50
ZENDESK_PAGE = 1000  # per_page at most 1000
QUICKBOOKS_MINOR_VERSION = "75"


@dataclass(frozen=True, repr=False)
class VendorAccess:
    """Where the three APIs are served and the credentials each accepts, as plain values: a dlt worker
    receives these and nothing of the simulator's code."""

    accounting_url: str
    token_url: str
    purchasing_url: str
    support_url: str
    realm_id: str
    client_id: str
    client_secret: str
    refresh_token: str
    coupa_api_key: str
    zendesk_email: str
    zendesk_api_token: str

    def __repr__(self) -> str:
        return f"VendorAccess(accounting_url={self.accounting_url!r}, secrets=<hidden>)"

    @classmethod
    def of(cls, sim: Any) -> VendorAccess:
        """From a running simulator (`benchmarks.simulator.RunningSimulator`): its URLs and the demo
        credentials it accepts."""
        creds = sim.credentials
        return cls(
            accounting_url=sim.base_urls["accounting"],
            token_url=sim.token_url,
            purchasing_url=sim.base_urls["purchasing"],
            support_url=sim.base_urls["support"],
            realm_id=creds.realm_id,
            client_id=creds.qbo_client_id,
            client_secret=creds.qbo_client_secret,
            refresh_token=creds.qbo_refresh_token,
            coupa_api_key=creds.coupa_api_key,
            zendesk_email=creds.zendesk_email,
            zendesk_api_token=creds.zendesk_api_token,
        )


def iso_z(moment: datetime) -> str:
    """`2026-01-01T00:00:00Z`: how Coupa and Zendesk write their timestamps, and the bounds we send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_seconds(text: str) -> int:
    """Zendesk's export starts at a Unix time, not at an ISO timestamp."""
    return int(datetime.fromisoformat(text).timestamp())


# --------------------------------------------------------------------------------------- QuickBooks


@configspec
class IntuitRefreshToken(OAuth2ClientCredentials):
    """Intuit's OAuth2 refresh-token grant, the client authenticated by HTTP basic auth. dlt ships the
    client-credentials grant; its documentation shows overriding `build_access_token_request` for
    other flows, as here (the refresh token goes in `access_token_request_data`)."""

    def build_access_token_request(self) -> dict[str, Any]:
        return {
            "headers": {"Accept": "application/json"},
            "auth": (self.client_id, self.client_secret),
            "data": {"grant_type": "refresh_token", **self.access_token_request_data},
        }


class QueryTextPaginator(BasePaginator):
    """QuickBooks pages inside the query text (`... STARTPOSITION 1001 MAXRESULTS 1000`), not in query
    parameters, which no paginator dlt ships can write. A page shorter than MAXRESULTS is the last."""

    def __init__(self, page_size: int = QUICKBOOKS_PAGE):
        super().__init__()
        self.page_size = page_size
        self.position = 1
        self.statement = ""

    def init_request(self, request: Request) -> None:
        self.position = 1
        self.statement = request.params["query"]
        self.update_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        if len(data or []) < self.page_size:
            self._has_next_page = False
        else:
            self.position += self.page_size

    def update_request(self, request: Request) -> None:
        request.params["query"] = (
            f"{self.statement} STARTPOSITION {self.position} MAXRESULTS {self.page_size}"
        )


def with_parsed_update_time(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice with `MetaData.LastUpdatedTime` as a datetime. QuickBooks writes it in the company's
    offset (`2025-12-31T16:30:00-08:00`): compared as text with a UTC bound, dlt's incremental would drop
    a window's first hours (the trap issue 23 names). Parsed, it compares as a moment."""
    meta = invoice.get("MetaData")
    if isinstance(meta, dict) and isinstance(meta.get("LastUpdatedTime"), str):
        meta["LastUpdatedTime"] = datetime.fromisoformat(meta["LastUpdatedTime"])
    return invoice


def quickbooks_invoices(access: VendorAccess, start: datetime, end: datetime) -> Any:
    """Invoices updated in [start, end), declarative but for the two classes above (the token grant and
    the paging in the query text). The window goes into the query through dlt's
    `{incremental.start_value}` placeholders, written as UTC by `convert`; the cursor is parsed by a
    processing step, which `rest_api` runs before its incremental filter."""
    statement = (
        "select * from Invoice where "
        "Metadata.LastUpdatedTime >= '{incremental.start_value}' and "
        "Metadata.LastUpdatedTime < '{incremental.end_value}' "
        "ORDERBY Metadata.LastUpdatedTime"
    )
    config: RESTAPIConfig = {
        "client": {
            "base_url": f"{access.accounting_url}/v3/company/{access.realm_id}/",
            "auth": IntuitRefreshToken(
                access_token_url=access.token_url,
                client_id=access.client_id,
                client_secret=access.client_secret,
                access_token_request_data={"refresh_token": access.refresh_token},
            ),
        },
        "resources": [
            {
                "name": "invoices",
                "primary_key": "Id",
                "endpoint": {
                    "path": "query",
                    "params": {"query": statement, "minorversion": QUICKBOOKS_MINOR_VERSION},
                    "data_selector": "QueryResponse.Invoice",
                    "paginator": QueryTextPaginator(),
                    "incremental": {
                        "cursor_path": "MetaData.LastUpdatedTime",
                        "initial_value": start,
                        "end_value": end,
                        "row_order": "asc",
                        "convert": iso_z,
                    },
                },
                "processing_steps": [{"map": with_parsed_update_time}],
            }
        ],
    }
    return rest_api_source(config, name="quickbooks")


# -------------------------------------------------------------------------------------------- Coupa


def coupa_purchase_orders(access: VendorAccess, start: datetime, end: datetime) -> Any:
    """Purchase orders updated in [start, end): all declarative. The API key header, offset/limit
    paging (no total in a bare JSON array: dlt stops at the first empty page), the window as Coupa's
    bracketed filters. Coupa's timestamps are all UTC with `Z`, so dlt compares them as text safely."""
    config: RESTAPIConfig = {
        "client": {
            "base_url": f"{access.purchasing_url}/api/",
            "auth": {
                "type": "api_key",
                "name": "X-COUPA-API-KEY",
                "api_key": access.coupa_api_key,
                "location": "header",
            },
        },
        "resources": [
            {
                "name": "purchase_orders",
                "primary_key": "id",
                "endpoint": {
                    "path": "purchase_orders",
                    "params": {"order_by": "updated_at", "dir": "asc"},
                    "data_selector": "$",
                    "paginator": {
                        "type": "offset",
                        "limit": COUPA_PAGE,
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "total_path": None,
                    },
                    "incremental": {
                        "cursor_path": "updated-at",
                        "start_param": "updated-at[gt_or_eq]",
                        "end_param": "updated-at[lt]",
                        "initial_value": iso_z(start),
                        "end_value": iso_z(end),
                        "row_order": "asc",
                    },
                },
            }
        ],
    }
    return rest_api_source(config, name="coupa")


# ------------------------------------------------------------------------------------------ Zendesk


class ZendeskExportPaginator(JSONResponseCursorPaginator):
    """Zendesk's cursor export: follow `after_cursor` until `end_of_stream`. dlt's cursor paginator can
    stop on a `has_more` flag but not on its negation, and the export always sends an `after_cursor`."""

    def __init__(self) -> None:
        super().__init__(cursor_path="after_cursor", cursor_param="cursor")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = response.json()
        cursor = body.get("after_cursor")
        self._next_reference = cursor if cursor and not body.get("end_of_stream") else None


def zendesk_tickets(access: VendorAccess, start: datetime, end: datetime) -> Any:
    """Tickets updated in [start, end) from the incremental cursor export, `{email}/token` basic auth.
    The export has no end time: dlt's `end_value` filters, and `row_order="asc"` stops the walk at the
    first ticket past the window."""
    config: RESTAPIConfig = {
        "client": {
            "base_url": f"{access.support_url}/api/v2/",
            "auth": {
                "type": "http_basic",
                "username": f"{access.zendesk_email}/token",
                "password": access.zendesk_api_token,
            },
        },
        "resources": [
            {
                "name": "support_tickets",
                "primary_key": "id",
                "endpoint": {
                    "path": "incremental/tickets/cursor.json",
                    "params": {"per_page": ZENDESK_PAGE},
                    "data_selector": "tickets",
                    "paginator": ZendeskExportPaginator(),
                    "incremental": {
                        "cursor_path": "updated_at",
                        "start_param": "start_time",
                        "initial_value": iso_z(start),
                        "end_value": iso_z(end),
                        "row_order": "asc",
                        "convert": unix_seconds,
                    },
                },
            }
        ],
    }
    return rest_api_source(config, name="zendesk")


SOURCES: dict[str, Callable[[VendorAccess, datetime, datetime], Any]] = {
    "invoices": quickbooks_invoices,
    "purchase_orders": coupa_purchase_orders,
    "support_tickets": zendesk_tickets,
}


# ------------------------------------------------------------------------------------------ loading


def database_path(work_dir: Path, table: str) -> Path:
    """One DuckDB file per table: three pipelines in three processes cannot share one (DuckDB admits
    one writing process)."""
    return work_dir / f"{table}.duckdb"


def run_pipeline(
    table: str, access: VendorAccess, start: datetime, end: datetime, work_dir: Path
) -> int:
    """Load `table`'s records updated in [start, end) into a fresh pipeline under `work_dir`; the rows
    the load reported."""
    quiet_dlt(work_dir)
    pipeline = dlt.pipeline(
        pipeline_name=f"versus_{table}",
        pipelines_dir=str(work_dir / "pipelines"),
        destination=dlt.destinations.duckdb(str(database_path(work_dir, table))),
        dataset_name=DATASET,
    )
    info = pipeline.run(SOURCES[table](access, start, end), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    return int(pipeline.last_trace.last_normalize_info.row_counts.get(table, 0))


def quiet_dlt(work_dir: Path) -> None:
    """No telemetry (dlt reports anonymous usage over the network by default: nothing may download or
    upload at run time), no global folder in the home directory, errors only (as the project's side:
    a benchmark should not time its terminal)."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
    os.environ["DLT_DATA_DIR"] = str(work_dir / "dlt-home")
