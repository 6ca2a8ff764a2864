"""The HTTP behaviour every source client shares: timeouts, retries, and errors a user can act on.

urllib3's `Retry` owns the retry policy (exponential backoff with jitter, `Retry-After`, a bounded budget).
A vendor that answers 200 with a body that is not the JSON it promised (an HTML error page from a proxy, a
truncated stream) is retried on the *same* `Retry` budget, so one page never gets more than one budget.

Credentials travel only in request headers; nothing in this module puts a header, a URL's userinfo or a
response body that could echo one into a log line or an exception message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from unified_assets.sources.pacing import RequestPacer

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class SourceError(RuntimeError):
    """A source system failed in a way retrying did not fix; the message says which system, where and why."""


class CredentialsRejected(SourceError):
    """The system answered 401/403: the configured credentials are wrong, expired or revoked."""


class NotFound(SourceError):
    """The system answered 404: what was asked for does not exist (or no longer does)."""


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and the retry budget for one system; the defaults suit the real APIs and the simulator."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_retries: int = 8
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter_s: float = 0.5
    retry_after_max_s: int = 120
    # From sending a request to its body's last byte (the read timeout bounds each read only: a body
    # trickled a byte at a time never trips it).
    response_deadline_s: float = 120.0
    # A page larger than this is refused before it is read: parsing it would take several times its size
    # in memory, and a vendor's documented page sizes stay far below it.
    max_response_mb: float = 32.0
    # Shared by the connections reading one window at once (`sources/pacing.py`); None: each request is
    # sent at once. urllib3's own retries of a 429 or 5xx wait what the answer asks, unpaced.
    pacer: RequestPacer | None = field(default=None, compare=False, repr=False)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)

    def retry(self) -> Retry:
        return BoundedRetry(
            total=self.max_retries,
            status_forcelist=RETRYABLE_STATUSES,
            allowed_methods=frozenset({"GET", "PUT"}),  # both idempotent: safe to repeat
            backoff_factor=self.backoff_factor_s,
            backoff_max=self.backoff_max_s,
            backoff_jitter=self.backoff_jitter_s,
            respect_retry_after_header=True,
            retry_after_max=self.retry_after_max_s,
            raise_on_status=False,
        )


class BoundedRetry(Retry):
    """urllib3's `Retry`, except that a `Retry-After` longer than `retry_after_max` is not waited out:
    urllib3 would cap the wait and ask again, eight times over, holding a run for as long as the vendor
    keeps saying "in an hour". The answer is handed back at once instead, and the client says when the
    vendor asked to be tried again."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, **kwargs):
        if response is not None and asked_to_wait_s(response.headers) > self.retry_after_max:
            reason = ResponseError(f"Retry-After longer than {self.retry_after_max} s")
            raise MaxRetryError(_pool, url or "", reason)
        return super().increment(method, url, response, error, _pool, **kwargs)


def asked_to_wait_s(headers: Any) -> float:
    """The seconds a response's `Retry-After` asks for (a number or an HTTP date), uncapped; 0 when it
    asks for nothing or nothing readable."""
    value = headers.get("Retry-After")
    if not value:
        return 0.0
    try:
        return Retry(retry_after_max=sys.maxsize).parse_retry_after(value)
    except InvalidHeader:
        return 0.0


def describe_endpoint(url: str) -> str:
    """Host and path of a URL without userinfo or query string: safe to show in logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class MalformedResponse(ValueError):
    """A 2xx response whose body is not the JSON the vendor documents."""

    summary = "malformed response"


class ResponseTooLarge(SourceError):
    """A response larger than the policy's `max_response_mb`: refused, not retried (it would be as large
    again)."""


class SlowResponse(MalformedResponse):
    """A response whose body had not all arrived by the request's deadline."""

    summary = "no whole response in time"


@dataclass
class JsonResponse:
    body: Any
    retries: int
    elapsed_s: float


class JsonApi:
    """A `requests.Session` bound to one system, speaking JSON, with the shared retry policy.

    `system` is the label users see in errors, e.g. "accounting (QuickBooks Online)".
    """

    def __init__(self, system: str, policy: HttpPolicy, headers: dict[str, str] | None = None):
        self.system = system
        self.policy = policy
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})
        adapter = HTTPAdapter(max_retries=policy.retry())
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.requests_made = 0
        self.retries_made = 0

    def close(self) -> None:
        self.session.close()

    def get_json(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        where: str = "",
    ) -> JsonResponse:
        """GET a JSON document; `where` (e.g. "page 3") makes errors point at the failing request."""
        return self.request_json("GET", url, params=params, headers=headers, where=where)

    def put_json(self, url: str, body: Any, *, where: str = "") -> JsonResponse:
        """PUT a JSON document (idempotent, so retried like a GET) and read the JSON answer."""
        return self.request_json("PUT", url, body=body, where=where)

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        where: str = "",
    ) -> JsonResponse:
        retry = self.policy.retry()
        started = time.monotonic()
        retries = 0
        while True:
            try:
                response, content = self._send(method, url, params, headers, body, where)
                retries += _retries_in(response)
                decoded = self._decode(method, response, content, url, where)
            except MalformedResponse as error:
                retry = self._spend(method, retry, url, error, where)
                retries += 1
                retry.sleep()
                continue
            self.retries_made += retries
            return JsonResponse(body=decoded, retries=retries, elapsed_s=time.monotonic() - started)

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        body: Any,
        where: str,
    ) -> tuple[requests.Response, bytes]:
        """The response and its whole body. Redirects are not followed: `requests` would carry a
        custom credential header (Coupa's API key) to whatever host a `Location` names."""
        self.requests_made += 1
        if self.policy.pacer is not None:
            self.policy.pacer.wait_turn()
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                headers=headers,
                json=body,
                timeout=self.policy.timeout,
                stream=True,
                allow_redirects=False,
            )
            limit = int(self.policy.max_response_mb * 1_000_000)
            content = _read_within(response, started, self.policy.response_deadline_s, limit)
            return response, content
        except ResponseTooLarge as error:
            raise self._error(method, url, where, str(error)) from None
        except requests.exceptions.RetryError as error:
            raise self._error(
                method, url, where, f"gave up after {self.policy.max_retries} retries"
            ) from error
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as error:
            raise self._error(
                method,
                url,
                where,
                f"no usable response after {self.policy.max_retries} retries "
                f"({type(error).__name__}: connection failed or timed out)",
            ) from error
        except requests.exceptions.ChunkedEncodingError:
            raise MalformedResponse("the response body was cut off") from None

    def _decode(
        self, method: str, response: requests.Response, content: bytes, url: str, where: str
    ) -> Any:
        if response.status_code in (401, 403):
            raise CredentialsRejected(
                f"credentials rejected for {self.system}: HTTP {response.status_code} from "
                f"{describe_endpoint(url)}{_at(where)}; check the configured token or key"
            )
        wait = asked_to_wait_s(response.headers) if response.status_code == 429 else 0.0
        if wait > self.policy.retry_after_max_s:
            again = datetime.now(UTC) + timedelta(seconds=wait)
            raise self._error(
                method,
                url,
                where,
                f"HTTP 429: the vendor asks to wait {wait:.0f} s (Retry-After), longer than the "
                f"{self.policy.retry_after_max_s} s a run waits; re-run after "
                f"{again:%Y-%m-%d %H:%M} UTC",
            )
        if 300 <= response.status_code < 400:
            raise self._error(method, url, where, _redirect_refused(url, response))
        if response.status_code in RETRYABLE_STATUSES:
            raise self._error(
                method,
                url,
                where,
                f"HTTP {response.status_code} persisted after {self.policy.max_retries} retries",
            )
        if response.status_code == 404:
            raise NotFound(
                f"{self.system}: HTTP 404: {_vendor_message(response, content)} "
                f"({method} {describe_endpoint(url)}{_at(where)})"
            )
        if response.status_code >= 400:
            raise self._error(
                method,
                url,
                where,
                f"HTTP {response.status_code}: {_vendor_message(response, content)}",
            )
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type:
            raise MalformedResponse(f"expected JSON, got Content-Type {content_type or 'none'!r}")
        try:
            return json.loads(content)
        except ValueError as error:
            raise MalformedResponse(f"invalid JSON ({_first_line(str(error))})") from None

    def _spend(
        self, method: str, retry: Retry, url: str, error: MalformedResponse, where: str
    ) -> Retry:
        try:
            return retry.increment(method=method, url=describe_endpoint(url), error=error)
        except MaxRetryError:
            raise self._error(
                method,
                url,
                where,
                f"{error.summary} after {self.policy.max_retries} retries: {error}",
            ) from None

    def _error(self, method: str, url: str, where: str, reason: str) -> SourceError:
        return SourceError(
            f"{self.system}: {reason} ({method} {describe_endpoint(url)}{_at(where)})"
        )


def _read_within(
    response: requests.Response, sent: float, deadline_s: float, max_bytes: int
) -> bytes:
    """The whole body, read within `deadline_s` of `sent` (a `time.monotonic()`), or SlowResponse: a
    watchdog shuts the connection's socket down at the deadline, which ends the read waiting on it (the
    connection is not reused). A body over `max_bytes` is ResponseTooLarge, refused by its
    Content-Length before a byte of it is read, or as soon as it grows past the limit."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise ResponseTooLarge(_too_large(int(declared), max_bytes))
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    expired = threading.Event()

    def shut_down() -> None:
        expired.set()
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: the read has ended anyway
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(sent + deadline_s - time.monotonic(), 0.0), shut_down)
    watchdog.daemon = True
    watchdog.start()
    received = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=1 << 16):
            received += chunk
            if len(received) > max_bytes:
                response.close()
                raise ResponseTooLarge(_too_large(len(received), max_bytes, at_least=True))
    except (requests.exceptions.RequestException, OSError):
        if not expired.is_set():
            raise
    finally:
        watchdog.cancel()
    if expired.is_set():
        response.close()
        raise SlowResponse(f"the body was still arriving {deadline_s:g} s after the request")
    return bytes(received)


def _too_large(size: int, max_bytes: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"the response is {more}{size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB a response may be "
        "(max_response_mb); ask for smaller pages (page_size) or raise the limit"
    )


def _redirect_refused(url: str, response: requests.Response) -> str:
    """Why a redirect is not followed, naming where it pointed (host and path only)."""
    target = urljoin(url, response.headers.get("Location", ""))
    elsewhere = urlsplit(target).netloc != urlsplit(url).netloc
    return (
        f"HTTP {response.status_code} redirect to {describe_endpoint(target)} not followed"
        + (
            " (another host: the credentials are sent to the configured host only)"
            if elsewhere
            else ""
        )
        + "; set the base URL to where the API answers"
    )


def _retries_in(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) if retries is not None else 0


def _at(where: str) -> str:
    return f", {where}" if where else ""


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def _vendor_message(response: requests.Response, content: bytes) -> str:
    """The vendor's own error text, shortened; bodies of 4xx errors carry no credentials."""
    try:
        body = json.loads(content)
    except ValueError:
        text = content.decode(response.encoding or "utf-8", errors="replace")
        return _first_line(text) or response.reason or "no details"
    return _first_line(json.dumps(body, sort_keys=True))
