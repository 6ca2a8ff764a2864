"""One loopback HTTP server speaking QuickBooks, Coupa and Zendesk, with rate limits and faults.

`SimulatorServer(world).start()` serves in a daemon thread (stdlib `ThreadingHTTPServer`, HTTP/1.1
with keep-alive) under three prefixes: `/quickbooks`, `/coupa`, `/zendesk`. Every request sees the
world at the clock's now. The pipeline per request: route -> authenticate -> rate limit -> number
the request -> ask the fault plan -> vendor handler -> response faults -> write.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from saas_simulator import coupa, quickbooks, zendesk
from saas_simulator.credentials import SimCredentials
from saas_simulator.faults import PAGING_FAULTS, RECORD_FAULTS, FaultPlan, FaultSpec
from saas_simulator.items import ItemStore
from saas_simulator.protocol import ApiRequest, ApiResponse, ServeContext
from saas_simulator.ratelimit import DEFAULT_RATE_LIMITS, RateLimit, RateLimiter
from saas_simulator.ticket_updates import TicketUpdates
from saas_simulator.timeutil import iso_z
from saas_simulator.world import SYSTEMS, World

log = logging.getLogger(__name__)

PREFIXES = {"accounting": "quickbooks", "purchasing": "coupa", "support": "zendesk"}
SYSTEM_OF_PREFIX = {prefix: system for system, prefix in PREFIXES.items()}
RESET = -1  # ApiResponse.status meaning "close the socket without answering"
HTML_PAGES = {
    "accounting": "<html><head><title>Intuit | Service temporarily unavailable</title></head>"
    "<body><h1>We're sorry</h1><p>QuickBooks Online is temporarily unavailable.</p></body></html>",
    "purchasing": "<!DOCTYPE html><html><head><title>We're sorry, but something went wrong"
    "</title></head><body><div class='dialog'><h1>We're sorry, but something went wrong.</h1>"
    "</div></body></html>",
    "support": "<html><head><title>Zendesk - 502 Bad Gateway</title></head><body><center>"
    "<h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>",
}


@dataclass
class _Route:
    endpoint: str  # "data" endpoints are rate limited, numbered and subject to faults
    handler: Callable[[ApiRequest, ServeContext], ApiResponse]
    data: bool = True
    limited: bool = True


@dataclass
class SystemStats:
    requests: int = 0
    rate_limited: int = 0
    auth_failures: int = 0
    token_requests: int = 0
    token_refreshes: int = 0
    # Data requests received and not yet answered (a page's latency included): a client killed
    # mid-request still gets its requests numbered once they are answered.
    in_flight: int = 0
    faults: Counter = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "auth_failures": self.auth_failures,
            "token_requests": self.token_requests,
            "token_refreshes": self.token_refreshes,
            "in_flight": self.in_flight,
            "faults": dict(self.faults),
        }


class SimulatorServer:
    """Serves a `World` as the three vendors' APIs on a loopback port (0 picks a free one)."""

    def __init__(
        self,
        world: World,
        faults: FaultPlan | None = None,
        credentials: SimCredentials | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limits: Mapping[str, RateLimit | None] | None = None,
        support_export_lag_s: float = zendesk.DEFAULT_EXPORT_LAG_S,
        state_dir: Path | None = None,
        page_latency_s: float = 0.0,
    ):
        self.world = world
        self.clock = world.clock
        self.faults = faults or FaultPlan()
        self.credentials = credentials or SimCredentials.demo()
        self.host = host
        self.port = port
        self.support_export_lag_s = support_export_lag_s
        if not page_latency_s >= 0:
            raise ValueError(f"page latency must be zero or more seconds, got {page_latency_s!r}")
        # A real vendor answers a page in tens to hundreds of milliseconds; loopback answers in one. The
        # delay lets benchmarks show what waiting on the network costs (and what concurrency saves).
        self.page_latency_s = page_latency_s
        limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self.rate_limits = {system: limits.get(system) for system in SYSTEMS}
        self._limiters = {
            s: RateLimiter(limit) for s, limit in self.rate_limits.items() if limit is not None
        }
        # What clients write (safety stock on purchasing items); on disk when it must outlive this process.
        self.items = ItemStore(state_dir / "purchasing_items.json" if state_dir else None)
        self.ticket_updates = TicketUpdates(
            state_dir / "support_tickets.json" if state_dir else None
        )
        self.tokens = quickbooks.TokenStore()
        self._stats = {system: SystemStats() for system in SYSTEMS}
        self._drift: dict[str, str] = {}
        self._last_page: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        handler = type("SimulatorHandler", (_Handler,), {"simulator": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="simulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_urls(self) -> dict[str, str]:
        """Where each system is served: the connectors append the vendor paths to these."""
        return {system: f"{self.url}/{prefix}" for system, prefix in PREFIXES.items()}

    @property
    def token_url(self) -> str:
        return f"{self.base_urls['accounting']}/oauth2/v1/tokens/bearer"

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """Per system: numbered requests, limiter 429s, auth failures, injected faults by kind."""
        with self._lock:
            return {system: stats.snapshot() for system, stats in self._stats.items()}

    # ------------------------------------------------------------------------------------- serving

    def serve(self, system: str, request: ApiRequest) -> ApiResponse:
        now = self.clock.timestamp()
        if system == "accounting" and request.path.rstrip("/") == "/oauth2/v1/tokens/bearer":
            return self._serve_token(system, request, now)
        route = self._route(system, request)
        if route is None:
            return _not_found(system, now)
        refused = self._authenticate(system, request, now)
        if refused is not None:
            with self._lock:
                self._stats[system].auth_failures += 1
            return refused
        if route.limited and system in self._limiters:
            wait = self._limiters[system].admit()
            if wait is not None:
                with self._lock:
                    self._stats[system].rate_limited += 1
                return self._throttled(system, now, RateLimiter.retry_after_header(wait))
        if not route.data:
            return route.handler(
                request, ServeContext(self.world, now, ticket_updates=self.ticket_updates)
            )
        with self._lock:
            self._stats[system].in_flight += 1
        try:
            if self.page_latency_s:
                time.sleep(self.page_latency_s)  # each request has its own thread
            return self._serve_data(system, route, request, now)
        finally:
            with self._lock:
                self._stats[system].in_flight -= 1

    def _serve_token(self, system: str, request: ApiRequest, now: float) -> ApiResponse:
        with self._lock:
            self._stats[system].token_requests += 1
            number = self._stats[system].token_requests
        if self.faults.decide(system, number, token_request=True):
            self._count(system, "token_endpoint_unavailable")
            return ApiResponse(
                503,
                {"error": "temporarily_unavailable"},
                headers={"Retry-After": str(self.faults.retry_after_s)},
            )
        response = quickbooks.token_endpoint(request, self.credentials, self.tokens)
        if response.status == 200:
            with self._lock:
                self._stats[system].token_refreshes += 1
        return response

    def _serve_data(
        self, system: str, route: _Route, request: ApiRequest, now: float
    ) -> ApiResponse:
        with self._lock:
            stats = self._stats[system]
            stats.requests += 1
            number = stats.requests
        fault = self.faults.decide(system, number)
        ctx = ServeContext(
            self.world, now, drift=self._drift.get(system), ticket_updates=self.ticket_updates
        )
        early = self._before_handler(system, fault, number, request, ctx) if fault else None
        if early is not None:
            return early
        response = route.handler(request, ctx)
        if fault and fault.kind in ("duplicate_records", *PAGING_FAULTS):
            self._count(system, fault.kind, fault.kind in ctx.applied)
        if response.status == 200 and response.records is not None:
            with self._lock:
                self._last_page[system] = response.records
        if fault and response.status == 200:
            return self._after_handler(system, fault.kind, response)
        return response

    def _after_handler(self, system: str, kind: str, response: ApiResponse) -> ApiResponse:
        """Faults that alter the vendor's 200 answer."""
        altered: ApiResponse | None = None
        if kind == "trickled_body":
            altered = replace(response, trickle_s=self.faults.trickle_s)
        elif kind in ("truncated_json", "malformed_json"):
            altered = _spoil(response, kind)
        elif kind == "oversized_page":
            padding = b" " * int(self.faults.oversize_mb * 1_000_000)
            altered = replace(response, body=encode_body(response) + padding)
        elif kind == "foreign_next_link" and system == "support":
            altered = replace(response, body=_links_elsewhere(response.body, self.faults.elsewhere))
        elif kind in RECORD_FAULTS:
            altered = _spoil_first_record(system, response, kind)
        if altered is None:
            return response
        self._count(system, kind)
        return altered

    def _before_handler(
        self, system: str, fault: FaultSpec, number: int, request: ApiRequest, ctx: ServeContext
    ) -> ApiResponse | None:
        """Faults that answer instead of the vendor, or that change what the vendor will do."""
        kind = fault.kind
        if kind in ("rate_limit", "rate_limit_no_retry_after"):
            self._count(system, kind)
            retry_after = str(self.faults.retry_after_s) if kind == "rate_limit" else None
            return self._throttled(system, ctx.now, retry_after, force=True)
        if kind == "server_error":
            self._count(system, kind)
            return _server_error(system, ctx.now, self.faults.server_error_status(system, number))
        if kind == "connection_reset":
            self._count(system, kind)
            return ApiResponse(RESET, b"")
        if kind == "redirect_elsewhere":
            self._count(system, kind)
            location = _elsewhere(self.faults.elsewhere, request)
            return ApiResponse(302, {"moved": location}, headers={"Location": location})
        if kind == "html_error_page":
            self._count(system, kind)
            return ApiResponse(
                200, HTML_PAGES[system].encode(), content_type="text/html; charset=utf-8"
            )
        if kind == "expired_token":
            self._count(system, kind)
            if system == "accounting":
                self.tokens.invalidate(quickbooks.bearer_token(request))
            return _auth_failed(system, ctx.now)
        if kind == "read_timeout":
            self._count(system, kind)
            time.sleep(self.faults.timeout_delay_s)
        elif kind == "schema_drift":
            self._count(system, kind)
            with self._lock:
                self._drift[system] = fault.mode or "new_field"
            ctx.drift = self._drift[system]
        elif kind == "duplicate_records":
            ctx.duplicates = self.faults.duplicate_count
        elif kind in PAGING_FAULTS:
            ctx.paging = kind
        elif kind == "concurrent_update":
            with self._lock:
                received = list(self._last_page.get(system, []))
            touched = self.world.touch(
                system, received[: self.faults.concurrent_update_count], ctx.now
            )
            self._count(system, kind, bool(touched))
        return None

    def _count(self, system: str, kind: str, applied: bool = True) -> None:
        if applied:
            with self._lock:
                self._stats[system].faults[kind] += 1

    def _route(self, system: str, request: ApiRequest) -> _Route | None:
        path = request.path.rstrip("/")
        parts = path.strip("/").split("/")
        if system == "accounting":
            if len(parts) == 4 and parts[:2] == ["v3", "company"] and parts[3] == "query":
                return _Route("query", quickbooks.handle_query)
            if len(parts) == 4 and parts[:2] == ["v3", "company"] and parts[3] == "preferences":
                return _Route("preferences", quickbooks.handle_preferences)
            return None
        if system == "purchasing":
            if path == "/api/purchase_orders":
                return _Route("purchase_orders", coupa.handle_list)
            if len(parts) == 3 and parts[:2] == ["api", "purchase_orders"]:
                return _Route("purchase_order", lambda r, c: coupa.handle_one(r, c, parts[2]))
            if (
                len(parts) == 3
                and parts[:2] == ["api", "items"]
                and request.method in ("GET", "PUT")
            ):
                return _Route("item", lambda r, c: coupa.handle_item(r, c, parts[2], self.items))
            return None
        if path == "/api/v2/incremental/tickets/cursor.json":
            lag = self.support_export_lag_s
            return _Route("export", lambda r, c: zendesk.handle_export(r, c, lag))
        if path == "/api/v2/ticket_fields.json":
            return _Route(
                "ticket_fields", lambda r, c: zendesk.handle_ticket_fields(r.base_url), False, False
            )
        if path == "/api/v2/tickets/update_many.json" and request.method == "PUT":
            store = self.ticket_updates
            return _Route(
                "update_many", lambda r, c: zendesk.handle_update_many(r, c, store), limited=False
            )
        if len(parts) == 4 and parts[:3] == ["api", "v2", "job_statuses"]:
            job_id, store = parts[3].removesuffix(".json"), self.ticket_updates
            return _Route(
                "job_status",
                lambda r, c: zendesk.handle_job_status(r, c, job_id, store),
                limited=False,
            )
        if len(parts) == 4 and parts[:3] == ["api", "v2", "tickets"] and parts[3].endswith(".json"):
            ticket_id = parts[3].removesuffix(".json")
            return _Route("ticket", lambda r, c: zendesk.handle_one(c, ticket_id), limited=False)
        return None

    def _authenticate(self, system: str, request: ApiRequest, now: float) -> ApiResponse | None:
        creds = self.credentials
        if system == "accounting":
            token = quickbooks.bearer_token(request)
            if not token or not self.tokens.valid(token):
                return quickbooks.auth_failed(
                    now, "Token expired" if token else "Authorization header missing"
                )
            realm = request.path.strip("/").split("/")[2]
            if realm != creds.realm_id:
                body = quickbooks.fault_body(
                    now,
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "",
                    "003100",
                    "SECURITY",
                )
                return ApiResponse(403, body)
            return None
        if system == "purchasing":
            return (
                None
                if request.header("X-COUPA-API-KEY") == creds.coupa_api_key
                else coupa.auth_failed()
            )
        expected = (f"{creds.zendesk_email}/token", creds.zendesk_api_token)
        return None if request.basic_auth() == expected else zendesk.auth_failed()

    def _throttled(
        self, system: str, now: float, retry_after: str | None, force: bool = False
    ) -> ApiResponse:
        response = {
            "accounting": lambda: quickbooks.throttled(now),
            "purchasing": coupa.throttled,
            "support": zendesk.throttled,
        }[system]()
        limit = self.rate_limits.get(system)
        send_header = force or (limit is not None and limit.retry_after)
        if retry_after is not None and send_header:
            response.headers["Retry-After"] = retry_after
        return response


def _server_error(system: str, now: float, status: int) -> ApiResponse:
    if system == "accounting":
        return quickbooks.server_error(now, status)
    return coupa.server_error(status) if system == "purchasing" else zendesk.server_error(status)


def _auth_failed(system: str, now: float) -> ApiResponse:
    if system == "accounting":
        return quickbooks.auth_failed(now)
    return coupa.auth_failed() if system == "purchasing" else zendesk.auth_failed()


def _not_found(system: str, now: float) -> ApiResponse:
    if system == "accounting":
        return quickbooks.not_found(now)
    return coupa.error(404, "Not found") if system == "purchasing" else zendesk.not_found()


def encode_body(response: ApiResponse) -> bytes:
    if isinstance(response.body, bytes):
        return response.body
    return json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _elsewhere(host: str, request: ApiRequest) -> str:
    """The request's own path and query on another host."""
    path = urlsplit(request.base_url).path.rstrip("/") + request.path
    query = urlencode(request.query, doseq=True)
    return f"{host}{path}" + (f"?{query}" if query else "")


def _links_elsewhere(body: dict[str, Any], host: str) -> dict[str, Any]:
    """The export page with its next and previous links moved to `host` (path and query kept)."""
    moved = dict(body)
    for name in ("after_url", "before_url"):
        if moved.get(name):
            parts = urlsplit(moved[name])
            moved[name] = f"{host}{parts.path}?{parts.query}"
    return moved


ID_FIELDS = {"accounting": "Id", "purchasing": "id", "support": "id"}


def _page_records(system: str, body: Any) -> list[dict[str, Any]]:
    """The records of a data page, where each vendor puts them."""
    if system == "accounting":
        return body.get("QueryResponse", {}).get("Invoice", []) if isinstance(body, dict) else []
    if system == "support":
        return body.get("tickets", []) if isinstance(body, dict) else []
    return body if isinstance(body, list) else []


def _spoil_first_record(system: str, response: ApiResponse, kind: str) -> ApiResponse | None:
    """The page with its first record's id removed or made into something that is not an id; None
    for a page without records (the fault does not apply)."""
    body = json.loads(encode_body(response))  # a copy: the world's own records stay whole
    records = _page_records(system, body)
    if not records:
        return None
    field_name = ID_FIELDS[system]
    if kind == "record_without_id":
        records[0].pop(field_name, None)
    else:
        records[0][field_name] = f"A-{records[0].get(field_name)}"
    return replace(response, body=body)


def _spoil(response: ApiResponse, kind: str) -> ApiResponse:
    """A 200 whose JSON is cut short (truncated_json) or syntactically broken (malformed_json)."""
    body = encode_body(response)
    if kind == "truncated_json":
        spoiled = body[: max(1, len(body) // 2)]
    else:
        spoiled = body[:-1] + b",}" if body.endswith(b"}") else body[:-1] + b",]"
    return ApiResponse(200, spoiled, content_type=response.content_type, headers=response.headers)


class _Handler(BaseHTTPRequestHandler):
    """Parses HTTP, asks the simulator, writes the answer (or resets the connection)."""

    simulator: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "unified-assets-simulator/1"
    timeout = 60  # seconds an idle keep-alive connection may hold its thread

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("simulator %s - %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        prefix, _, rest = url.path.lstrip("/").partition("/")
        system = SYSTEM_OF_PREFIX.get(prefix)
        if system is None:
            self._write(self._index(url.path))
            return
        host = self.headers.get("Host") or f"{self.simulator.host}:{self.simulator.port}"
        request = ApiRequest(
            method=method,
            path="/" + rest,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
            base_url=f"http://{host}/{prefix}",
        )
        try:
            response = self.simulator.serve(system, request)
        except Exception:  # a simulator bug must surface as a 500, not a hung client
            log.exception("simulator failed to serve %s %s", method, url.path)
            response = _server_error(system, time.time(), 500)
        if response.status == RESET:
            self._reset()
            return
        self._write(response)

    def _index(self, path: str) -> ApiResponse:
        if path.rstrip("/") in ("", "/_simulator"):
            body = {
                "simulator": "unified_assets",
                "now": iso_z(int(self.simulator.clock.timestamp())),
                "clock": str(self.simulator.clock),
                "base_urls": self.simulator.base_urls,
            }
            return ApiResponse(200, body)
        return ApiResponse(404, {"error": f"no system is served at {path!r}; see /"})

    def _write(self, response: ApiResponse) -> None:
        payload = encode_body(response)
        content_type = response.content_type
        if content_type == "application/json":
            content_type = "application/json; charset=utf-8"
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if response.trickle_s:
                self._trickle(payload, response.trickle_s)
            else:
                self.wfile.write(payload)
        except (
            BrokenPipeError,
            ConnectionResetError,
        ):  # the client gave up (e.g. its read timeout)
            self.close_connection = True

    def _trickle(self, payload: bytes, interval_s: float) -> None:
        """Send the body a byte at a time, each flushed: every read on the other side gets one byte
        within `interval_s`, so no read timeout fires, however long the whole takes."""
        for index in range(len(payload)):
            self.wfile.write(payload[index : index + 1])
            self.wfile.flush()
            time.sleep(interval_s)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no response (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
