"""Invoices from QuickBooks Online's query API.

QuickBooks speaks a small SQL dialect over `GET /v3/company/{realmId}/query`, pages with 1-based
STARTPOSITION/MAXRESULTS (at most 1000) and authenticates with short-lived OAuth2 access tokens obtained from
a long-lived refresh token. Timestamps carry the company's UTC offset (e.g. `-08:00`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from unified_assets.sources.http import (
    CredentialsRejected,
    HttpPolicy,
    JsonApi,
    SourceError,
    describe_endpoint,
)
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

SYSTEM = "accounting (QuickBooks Online)"
MAX_PAGE_SIZE = 1000
MINOR_VERSION = "75"

# DuckDB SELECT list turning one invoice (column `json`) into the typed columns of raw/invoices. Only
# sales lines are kept as lines (QuickBooks appends a SubTotalLineDetail line); `_raw` keeps everything.
RAW_COLUMNS = projection(
    [
        Column("id", "$.Id"),
        Column("updated_at", "$.MetaData.LastUpdatedTime", "timestamptz", strict=True),
        Column("created_at", "$.MetaData.CreateTime", "timestamptz"),
        Column("sync_token", "$.SyncToken", "integer"),
        Column("doc_number", "$.DocNumber"),
        Column("txn_date", "$.TxnDate", "date"),
        Column("due_date", "$.DueDate", "date"),
        Column("customer_ref", "$.CustomerRef.value"),
        Column("customer_name", "$.CustomerRef.name"),
        Column("currency_code", "$.CurrencyRef.value"),
        Column("exchange_rate", "$.ExchangeRate", "double"),
        Column("total_amount", "$.TotalAmt", "decimal(18, 2)"),
        Column("balance", "$.Balance", "decimal(18, 2)"),
        Column("private_note", "$.PrivateNote"),
    ],
    Lines(
        "lines",
        "$.Line[*]",
        [
            Column("line_id", "$.Id"),
            Column("line_num", "$.LineNum", "integer"),
            Column("item_ref", "$.SalesItemLineDetail.ItemRef.value"),
            Column("item_name", "$.SalesItemLineDetail.ItemRef.name"),
            Column("quantity", "$.SalesItemLineDetail.Qty", "double"),
            Column("unit_price", "$.SalesItemLineDetail.UnitPrice", "decimal(18, 4)"),
            Column("amount", "$.Amount", "decimal(18, 2)"),
        ],
        where="line ->> '$.DetailType' = 'SalesItemLineDetail'",
    ),
)


@dataclass(frozen=True, repr=False)
class QuickBooksCredentials:
    """OAuth2 client credentials plus the company's refresh token. `repr` hides them all."""

    realm_id: str
    client_id: str
    client_secret: str
    refresh_token: str

    def __repr__(self) -> str:
        return f"QuickBooksCredentials(realm_id={self.realm_id!r}, secrets=<hidden>)"


def invoice_updated_at(invoice: dict[str, Any]) -> datetime:
    return record_timestamp(invoice, ("MetaData", "LastUpdatedTime"), SYSTEM, id_field="Id")


class AccessTokens:
    """Access tokens shared by the clients of one process until shortly before they expire.

    Intuit's access tokens live an hour; a sensor opens a new client every tick, and refreshing each time
    would ask the token endpoint once a minute for nothing. Keyed by endpoint, company, app and a digest of
    the refresh token, so two companies or a changed credential never share a token; the token itself stays
    in memory only.
    """

    MARGIN_S = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(token_url: str, credentials: QuickBooksCredentials) -> tuple[str, ...]:
        digest = hashlib.sha256(credentials.refresh_token.encode()).hexdigest()
        return (token_url, credentials.realm_id, credentials.client_id, digest)

    def get(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            token, usable_until = self._tokens.get(key, (None, 0.0))
            return token if self._clock() < usable_until else None

    def put(self, key: tuple[str, ...], token: str, expires_in_s: float) -> None:
        with self._lock:
            self._tokens[key] = (token, self._clock() + expires_in_s - self.MARGIN_S)

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)


ACCESS_TOKENS = AccessTokens()
# What Intuit documents when a token response leaves out `expires_in`.
DEFAULT_TOKEN_LIFETIME_S = 3600


class QuickBooksClient(ClosedOnExit):
    """Reads invoices updated in a window, refreshing the access token when QuickBooks says it expired."""

    def __init__(
        self,
        base_url: str,
        token_url: str,
        credentials: QuickBooksCredentials,
        policy: HttpPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
        log: logging.Logger | None = None,
        tokens: AccessTokens = ACCESS_TOKENS,
    ):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"QuickBooks page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        company = f"{base_url.rstrip('/')}/v3/company/{credentials.realm_id}"
        self.query_url = f"{company}/query"
        self.preferences_url = f"{company}/preferences"
        self.token_url = token_url
        self.credentials = credentials
        self.page_size = page_size
        self.log = log or logging.getLogger(__name__)
        self.api = JsonApi(SYSTEM, policy or HttpPolicy())
        self._token_session = _token_session(self.api.policy)
        self._tokens = tokens
        self._token_key = AccessTokens.key(token_url, credentials)
        self.token_refreshes = 0

    def close(self) -> None:
        self.api.close()
        self._token_session.close()

    def extract(self, window: Window) -> Iterator[Page]:
        """Invoices whose MetaData.LastUpdatedTime lies in `window`, oldest update first."""
        return walk_keyset(window, self.page_size, self._fetch(window), invoice_updated_at)

    def count(self, window: Window) -> int:
        """How many invoices QuickBooks holds in the window now (a cheap probe for sensors and tests)."""
        body = self._query(
            f"select count(*) from Invoice where {_window_filter(window.start, window)}"
        )
        return int(body.get("QueryResponse", {}).get("totalCount", 0))

    def _fetch(self, window: Window):
        def fetch(cursor: KeysetCursor, limit: int) -> tuple[list[dict[str, Any]], int, float]:
            statement = (
                f"select * from Invoice where {_window_filter(cursor.since, window)} "
                f"ORDERBY Metadata.LastUpdatedTime STARTPOSITION {cursor.skip + 1} MAXRESULTS {limit}"
            )
            response = self._query_response(statement, where=f"rows from {cursor.skip + 1}")
            query_response = response.body.get("QueryResponse")
            if not isinstance(query_response, dict):
                raise SourceError(
                    f"{SYSTEM}: response has no QueryResponse object "
                    f"(GET {describe_endpoint(self.query_url)})"
                )
            invoices = query_response.get("Invoice", [])
            request = f"GET {describe_endpoint(self.query_url)}, rows from {cursor.skip + 1}"
            check_record_ids(invoices, "Id", SYSTEM, request, digits_as_text=True)
            return invoices, response.retries, response.elapsed_s

        return fetch

    def books_closed_through(self) -> date | None:
        """The company's book close date (`Preferences.AccountingInfoPrefs.BookCloseDate`): every month
        up to it has been closed by finance. None while no month has been closed."""
        body = self._get(self.preferences_url, {"minorversion": MINOR_VERSION}, "preferences").body
        preferences = body.get("Preferences") if isinstance(body, dict) else None
        if not isinstance(preferences, dict):
            raise SourceError(
                f"{SYSTEM}: response has no Preferences object "
                f"(GET {describe_endpoint(self.preferences_url)})"
            )
        value = (preferences.get("AccountingInfoPrefs") or {}).get("BookCloseDate")
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise SourceError(
                f"{SYSTEM}: Preferences.AccountingInfoPrefs.BookCloseDate is not a date "
                f"(got {str(value)[:40]!r}; GET {describe_endpoint(self.preferences_url)})"
            ) from None

    def _query(self, statement: str) -> dict[str, Any]:
        return self._query_response(statement, where="count").body

    def _query_response(self, statement: str, where: str):
        return self._get(self.query_url, {"query": statement, "minorversion": MINOR_VERSION}, where)

    def _get(self, url: str, params: dict[str, Any], where: str):
        for attempt in (1, 2):
            try:
                return self.api.get_json(
                    url, params=params, headers=self._auth_header(), where=where
                )
            except CredentialsRejected:
                if attempt == 2:
                    raise
                self.log.info("%s: access token rejected; refreshing it once", SYSTEM)
                self._tokens.forget(self._token_key)
        raise AssertionError("unreachable")

    def _auth_header(self) -> dict[str, str]:
        token = self._tokens.get(self._token_key)
        if token is None:
            token, expires_in_s = self._refresh_access_token()
            self._tokens.put(self._token_key, token, expires_in_s)
        return {"Authorization": f"Bearer {token}"}

    def _refresh_access_token(self) -> tuple[str, float]:
        """Exchange the refresh token for an access token (Intuit's OAuth2 `refresh_token` grant)."""
        try:
            response = self._token_session.post(
                self.token_url,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": self.credentials.refresh_token,
                },
                auth=(self.credentials.client_id, self.credentials.client_secret),
                headers={"Accept": "application/json"},
                timeout=self.api.policy.timeout,
            )
        except requests.exceptions.RequestException as error:
            raise SourceError(
                f"{SYSTEM}: could not reach the OAuth2 token endpoint "
                f"{describe_endpoint(self.token_url)} after {self.api.policy.max_retries} retries "
                f"({type(error).__name__})"
            ) from None
        if response.status_code in (400, 401, 403):
            raise CredentialsRejected(
                f"credentials rejected for {SYSTEM}: the token endpoint answered HTTP "
                f"{response.status_code}; check the client id, client secret and refresh token"
            )
        if response.status_code != 200:
            raise SourceError(
                f"{SYSTEM}: token endpoint {describe_endpoint(self.token_url)} answered HTTP "
                f"{response.status_code}"
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in_s = float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME_S))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SourceError(
                f"{SYSTEM}: token endpoint {describe_endpoint(self.token_url)} returned no usable "
                "access_token and expires_in"
            ) from None
        self.token_refreshes += 1
        return token, expires_in_s


def _token_session(policy: HttpPolicy) -> requests.Session:
    """A session for the refresh-token grant, retried like a page read: a POST, but one that may be
    repeated (Intuit's refresh token stays valid until a new one is used), and a token endpoint that
    times out or answers 503 once must not fail a night's extract."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy.retry().new(allowed_methods=frozenset({"POST"})))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _window_filter(since: datetime, window: Window) -> str:
    return (
        f"Metadata.LastUpdatedTime >= '{iso_utc(since)}' "
        f"and Metadata.LastUpdatedTime < '{iso_utc(window.end)}'"
    )
