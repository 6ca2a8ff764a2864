"""Accounting as QuickBooks Online speaks it: invoices, the query language, OAuth2, `Fault`s.

`GET /v3/company/{realmId}/query?query=select * from Invoice where Metadata.LastUpdatedTime >= '...'
ORDERBY Metadata.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000` with a bearer token from
`POST /oauth2/v1/tokens/bearer`. Timestamps carry the company's offset (America/Los_Angeles).
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import numpy as np

from saas_simulator import closing
from saas_simulator.generate import INVOICE_EVENTS
from saas_simulator.names import CURRENCIES, CURRENCY_NAMES
from saas_simulator.protocol import ApiRequest, ApiResponse, BadRequest, ServeContext
from saas_simulator.tables import TOUCH, SystemView
from saas_simulator.timeutil import (
    COMPANY_ZONE,
    iso_la,
    iso_la_millis,
    la_date,
    parse_moment,
)

if TYPE_CHECKING:
    from saas_simulator.credentials import SimCredentials
    from saas_simulator.worldview import WorldView

SYSTEM = "accounting"
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
TOKEN_LIFETIME_S = 3600
REFRESH_TOKEN_LIFETIME_S = 8_726_400
CREATED, EMAILED, VOIDED, PAID, EDITED, FISCAL_STAMP = range(len(INVOICE_EVENTS))
TERMS_REF = {15: "2", 30: "3", 60: "4"}

# ---------------------------------------------------------------------------------------- rendering


def render_invoices(
    world: WorldView, view: SystemView, records: np.ndarray, versions: np.ndarray
) -> list[dict]:
    """The wire dicts of the given (record, version) pairs, as the query API serves them."""
    table = view.table
    cols = table.records
    customers = world.catalog.customers
    contacts = world.catalog.contacts
    products = world.catalog.products
    out = []
    for record, version in zip(records.tolist(), versions.tolist(), strict=True):
        events = view.events(record, version)
        kinds = {kind for _, kind in events}
        customer = int(cols["customer"][record])
        created = int(cols["created"][record])
        terms = int(cols["terms"][record])
        currency = CURRENCIES[int(cols["currency"][record])]
        voided = VOIDED in kinds
        lines_slice = table.line_slice(record)
        skus = table.lines["sku"][lines_slice].tolist()
        qtys = table.lines["qty"][lines_slice].tolist()
        prices = table.lines["unit_price"][lines_slice].tolist()
        if EDITED in kinds:
            qtys[int(cols["edit_line"][record])] = int(cols["edit_qty"][record])
        lines, total = _invoice_lines(skus, qtys, prices, voided, products)
        txn_date = la_date(created)
        invoice: dict[str, Any] = {
            "Id": str(record + 1),
            "SyncToken": str(version),
            "domain": "QBO",
            "sparse": False,
            "DocNumber": str(10001 + record),
            "TxnDate": txn_date,
            "DueDate": (date.fromisoformat(txn_date) + timedelta(days=terms)).isoformat(),
            "CurrencyRef": {"value": currency, "name": CURRENCY_NAMES[currency]},
            "ExchangeRate": float(cols["fx"][record]),
            "CustomerRef": {
                "value": str(customers.qbo_id[customer]),
                "name": customers.qbo_name[customer],
            },
            "SalesTermRef": {"value": TERMS_REF.get(terms, "3"), "name": f"Net {terms}"},
            "BillEmail": {"Address": contacts.email[int(cols["contact"][record])]},
            "Line": lines,
            "TxnTaxDetail": {"TotalTax": 0},
            "TotalAmt": total,
            "Balance": 0 if (voided or PAID in kinds) else total,
            "LinkedTxn": [{"TxnId": str(50001 + record), "TxnType": "Payment"}]
            if PAID in kinds
            else [],
            "EmailStatus": "EmailSent" if EMAILED in kinds else "NotSet",
            "PrintStatus": "NotSet",
            "CustomField": [_fiscal_field(txn_date, FISCAL_STAMP in kinds)],
            "MetaData": {"CreateTime": iso_la(created), "LastUpdatedTime": iso_la(events[-1][0])},
        }
        if currency != "USD":
            invoice["HomeTotalAmt"] = round(total * invoice["ExchangeRate"], 2)
        memo = _memo(events)
        if memo:
            invoice["CustomerMemo"] = {"value": memo}
        if voided:
            invoice["PrivateNote"] = "Voided"
        out.append(invoice)
    return out


def _invoice_lines(skus, qtys, prices, voided, products) -> tuple[list[dict], float]:
    lines = []
    total = 0.0
    for number, (sku, qty, price) in enumerate(zip(skus, qtys, prices, strict=True), start=1):
        amount = 0.0 if voided else round(qty * price, 2)
        total += amount
        lines.append(
            {
                "Id": str(number),
                "LineNum": number,
                "Description": products.name[sku],
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": str(products.qbo_item_id[sku]), "name": products.sku[sku]},
                    "UnitPrice": price,
                    "Qty": 0 if voided else qty,
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        )
    total = round(total, 2)
    lines.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return lines, total


def _fiscal_field(txn_date: str, stamped: bool) -> dict:
    field_ = {"DefinitionId": "1", "Name": "Fiscal period", "Type": "StringType"}
    if stamped:
        year, month = int(txn_date[:4]), int(txn_date[5:7])
        field_["StringValue"] = f"{year}-Q{(month - 1) // 3 + 1}"
    return field_


def _memo(events: list[tuple[int, int]]) -> str | None:
    memo = None
    for _, kind in events:
        if kind == EDITED:
            memo = "Quantity corrected: goods returned"
        elif kind == TOUCH:
            memo = "Payment reminder sent"
    return memo


def apply_drift(invoices: list[dict], mode: str) -> list[dict]:
    """Schema drift as a minor-version change would bring it (see docs/simulator.md)."""
    for invoice in invoices:
        if mode == "new_field":
            invoice["ProjectRef"] = {"value": "1", "name": "Operations"}
        elif mode == "renamed_field":
            invoice["TotalAmount"] = invoice.pop("TotalAmt")
        elif mode == "changed_type":
            invoice["TotalAmt"] = f"{invoice['TotalAmt']:.2f}"
            invoice["Balance"] = f"{invoice['Balance']:.2f}"
            for line in invoice["Line"]:
                line["Amount"] = f"{line['Amount']:.2f}"
    return invoices


# ------------------------------------------------------------------------------------------- errors


def fault_body(now: float, message: str, detail: str, code: str, kind: str) -> dict:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
        "time": iso_la_millis(now),
    }


def auth_failed(now: float, detail: str = "Token expired") -> ApiResponse:
    body = fault_body(
        now,
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        "3200",
        "AUTHENTICATION",
    )
    return ApiResponse(
        401, body, headers={"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
    )


def throttled(now: float) -> ApiResponse:
    body = fault_body(
        now,
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        "3001",
        "SERVICE",
    )
    return ApiResponse(429, body)


def server_error(now: float, status: int) -> ApiResponse:
    detail = {
        500: "System Failure Error: An unexpected error occurred",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }
    body = fault_body(
        now,
        "An application error has occurred while processing your request",
        detail.get(status, "Error"),
        "10000",
        "SystemFault",
    )
    return ApiResponse(status, body)


def bad_request(now: float, detail: str) -> ApiResponse:
    return ApiResponse(
        400,
        fault_body(
            now, "Error parsing query", f"QueryParserError: {detail}", "4000", "ValidationFault"
        ),
    )


def not_found(now: float) -> ApiResponse:
    body = fault_body(
        now,
        "Unsupported Operation",
        "Operation not supported by this endpoint",
        "114",
        "ValidationFault",
    )
    return ApiResponse(404, body)


# ------------------------------------------------------------------------------------------- tokens


@dataclass
class TokenStore:
    """Access tokens issued by the OAuth2 endpoint; each expires after an hour of real time."""

    lifetime_s: float = TOKEN_LIFETIME_S
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self) -> str:
        token = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)
        with self._lock:
            now = time.monotonic()
            if len(self._tokens) > 1000:
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.lifetime_s
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def invalidate(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)


def bearer_token(request: ApiRequest) -> str:
    scheme, _, token = request.header("Authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def token_endpoint(
    request: ApiRequest, credentials: SimCredentials, tokens: TokenStore
) -> ApiResponse:
    """Intuit's OAuth2 refresh-token grant; the refresh token does not rotate."""
    if request.method != "POST":
        return ApiResponse(405, {"error": "invalid_request", "error_description": "use POST"})
    client = request.basic_auth()
    if client != (credentials.qbo_client_id, credentials.qbo_client_secret):
        return ApiResponse(401, {"error": "invalid_client"})
    form = parse_qs(request.body.decode("utf-8", "replace"))
    if form.get("grant_type", [""])[0] != "refresh_token":
        return ApiResponse(400, {"error": "unsupported_grant_type"})
    if form.get("refresh_token", [""])[0] != credentials.qbo_refresh_token:
        return ApiResponse(400, {"error": "invalid_grant"})
    return ApiResponse(
        200,
        {
            "token_type": "bearer",
            "access_token": tokens.issue(),
            "expires_in": int(tokens.lifetime_s),
            "refresh_token": credentials.qbo_refresh_token,
            "x_refresh_token_expires_in": REFRESH_TOKEN_LIFETIME_S,
        },
    )


# -------------------------------------------------------------------------------------------- query

TOKEN_RE = re.compile(r"'(?:[^']|'')*'|>=|<=|!=|[(),=<>*]|[^\s(),=<>'*]+")
FIELDS = {
    "metadata.lastupdatedtime": "updated",
    "metadata.createtime": "created",
    "id": "id",
}


@dataclass
class Condition:
    field: str
    op: str
    values: list[str]


@dataclass
class InvoiceQuery:
    count: bool
    conditions: list[Condition]
    order_field: str | None
    descending: bool
    start_position: int
    max_results: int


def parse_query(statement: str) -> InvoiceQuery:
    """Parse the query-language subset the simulator serves; BadRequest names the problem."""
    tokens = TOKEN_RE.findall(statement)
    stream = _Tokens(tokens, statement)
    stream.expect("select")
    count = False
    if stream.peek_is("*"):
        stream.next()
    elif stream.peek_is("count"):
        stream.next()
        stream.expect("(")
        stream.expect("*")
        stream.expect(")")
        count = True
    else:
        raise BadRequest(f"expected * or count(*) after SELECT in {statement!r}")
    stream.expect("from")
    entity = stream.next()
    if entity.lower() != "invoice":
        raise BadRequest(f"entity {entity!r} is not served; the simulator serves Invoice")
    conditions = []
    if stream.peek_is("where"):
        stream.next()
        conditions.append(_condition(stream))
        while stream.peek_is("and"):
            stream.next()
            conditions.append(_condition(stream))
    order_field, descending, start, maximum = None, False, 1, DEFAULT_RESULTS
    while not stream.done():
        word = stream.next().lower()
        if word in ("orderby", "order"):
            if word == "order":
                stream.expect("by")
            order_field = _field(stream.next())
            if stream.peek_is("asc") or stream.peek_is("desc"):
                descending = stream.next().lower() == "desc"
        elif word == "startposition":
            start = _positive_int(stream.next(), "STARTPOSITION")
        elif word == "maxresults":
            maximum = _positive_int(stream.next(), "MAXRESULTS")
            if maximum > MAX_RESULTS:
                raise BadRequest(f"MAXRESULTS {maximum} exceeds the maximum of {MAX_RESULTS}")
        else:
            raise BadRequest(f"unexpected {word!r} in {statement!r}")
    return InvoiceQuery(count, conditions, order_field, descending, start, maximum)


class _Tokens:
    def __init__(self, tokens: list[str], statement: str):
        self.tokens = tokens
        self.position = 0
        self.statement = statement

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def peek_is(self, word: str) -> bool:
        return not self.done() and self.tokens[self.position].lower() == word

    def next(self) -> str:
        if self.done():
            raise BadRequest(f"unexpected end of query {self.statement!r}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, word: str) -> None:
        token = self.next()
        if token.lower() != word:
            raise BadRequest(f"expected {word.upper()} but found {token!r} in {self.statement!r}")


def _field(token: str) -> str:
    name = FIELDS.get(token.lower())
    if name is None:
        raise BadRequest(
            f"property {token!r} is not queryable here; "
            "use Id, Metadata.LastUpdatedTime or Metadata.CreateTime"
        )
    return name


def _condition(stream: _Tokens) -> Condition:
    name = _field(stream.next())
    op = stream.next().lower()
    if op == "in":
        stream.expect("(")
        values = [_literal(stream.next())]
        while stream.peek_is(","):
            stream.next()
            values.append(_literal(stream.next()))
        stream.expect(")")
        return Condition(name, "in", values)
    if op not in (">", ">=", "<", "<=", "="):
        raise BadRequest(f"operator {op!r} is not supported; use >, >=, <, <=, = or IN")
    return Condition(name, op, [_literal(stream.next())])


def _literal(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1].replace("''", "'")
    raise BadRequest(f"expected a quoted value, found {token!r}")


def _positive_int(token: str, name: str) -> int:
    if not token.isdigit() or int(token) < 1:
        raise BadRequest(f"{name} must be a positive integer, got {token!r}")
    return int(token)


# ---------------------------------------------------------------------------------------- execution


def handle_query(request: ApiRequest, ctx: ServeContext) -> ApiResponse:
    statement = request.query.get("query", [""])[0]
    if request.method == "POST" and not statement:
        statement = request.body.decode("utf-8", "replace")
    if not statement.strip():
        return bad_request(ctx.now, "the query parameter is missing")
    try:
        query = parse_query(statement)
        view = ctx.world.view(SYSTEM, ctx.now)
        positions = _matching(view, query, ctx.now)
    except BadRequest as error:
        return bad_request(ctx.now, str(error))
    stamp = iso_la_millis(ctx.now)
    if query.count:
        return ApiResponse(200, {"QueryResponse": {"totalCount": len(positions)}, "time": stamp})
    begin = query.start_position - 1
    if ctx.duplicates and begin > 0:
        ctx.applied.add("duplicate_records")
        begin = max(0, begin - ctx.duplicates)
    page = positions[begin : query.start_position - 1 + query.max_results]
    if len(page) == 0:
        return ApiResponse(200, {"QueryResponse": {}, "time": stamp}, records=[])
    records, versions = view.index.record[page], view.index.version[page]
    invoices = render_invoices(ctx.world, view, records, versions)
    if ctx.drift:
        apply_drift(invoices, ctx.drift)
    body = {
        "QueryResponse": {
            "Invoice": invoices,
            "startPosition": query.start_position,
            "maxResults": len(invoices),
        },
        "time": stamp,
    }
    return ApiResponse(200, body, records=records.tolist())


def _matching(view: SystemView, query: InvoiceQuery, now: float) -> np.ndarray:
    """Index positions of visible invoices matching the WHERE clause, in the requested order."""
    start, end = None, None
    for condition in query.conditions:
        if condition.field == "updated":
            start, end = _narrow(start, end, condition)
    positions = view.index.visible(now, start, end)
    records = view.index.record[positions]
    keep = np.ones(len(positions), dtype=bool)
    created = view.table.records["created"]
    for condition in query.conditions:
        if condition.field == "created":
            low, high = _narrow(None, None, condition)
            moments = created[records]
            if low is not None:
                keep &= moments >= math.ceil(low)
            if high is not None:
                keep &= moments < math.ceil(high)
        elif condition.field == "id":
            wanted = [_record_of(value) for value in condition.values]
            if condition.op not in ("=", "in"):
                raise BadRequest("Id supports = and IN only")
            keep &= np.isin(records, wanted)
    positions, records = positions[keep], records[keep]
    if query.order_field == "id" or query.order_field is None:
        positions = positions[np.argsort(records, kind="stable")]
    elif query.order_field == "created":
        positions = positions[np.lexsort((records, created[records]))]
    return positions[::-1] if query.descending else positions


def _narrow(
    start: float | None, end: float | None, condition: Condition
) -> tuple[float | None, float | None]:
    if condition.op == "in":
        raise BadRequest("IN is supported for Id only")
    moment = _moment(condition.values[0])
    low, high = {
        ">": (math.floor(moment) + 1, None),
        ">=": (moment, None),
        "<": (None, moment),
        "<=": (None, math.floor(moment) + 1),
        "=": (moment, math.floor(moment) + 1),
    }[condition.op]
    if low is not None:
        start = low if start is None else max(start, low)
    if high is not None:
        end = high if end is None else min(end, high)
    return start, end


def _moment(value: str) -> float:
    try:
        return parse_moment(value, naive_zone=COMPANY_ZONE)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _record_of(value: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"Id must be numeric, got {value!r}")
    return int(value) - 1


def handle_preferences(request: ApiRequest, ctx: ServeContext) -> ApiResponse:
    """`GET /v3/company/{realmId}/preferences`: the company's settings, where the month-end close shows
    as `AccountingInfoPrefs.BookCloseDate` (absent until the first month is closed)."""
    history_start = ctx.world.config.history_start
    close, closes = closing.latest_close(history_start, ctx.now)
    accounting: dict[str, Any] = {
        "FirstMonthOfFiscalYear": "January",
        "TaxYearMonth": "January",
        "UseAccountNumbers": True,
        "TrackDepartments": False,
        "ClassTrackingPerTxn": False,
    }
    if close is not None:
        accounting["BookCloseDate"] = close.book_close_date.isoformat()
    created = closing.close_of(history_start.replace(day=1)).closed_at - 40 * 86_400
    preferences = {
        "AccountingInfoPrefs": accounting,
        "CurrencyPrefs": {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": "USD"}},
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": str(closes),
        "MetaData": {
            "CreateTime": iso_la(created),
            "LastUpdatedTime": iso_la(close.closed_at if close else created),
        },
    }
    return ApiResponse(200, {"Preferences": preferences, "time": iso_la_millis(ctx.now)})
