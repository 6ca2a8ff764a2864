"""A small HTTP endpoint for the vendors' webhooks: verify, store in the inbox, answer fast.

    POST /webhooks/support      Zendesk (X-Zendesk-Webhook-Signature + timestamp)
    POST /webhooks/accounting   the accounting system (x-xero-signature)

Answers: 200 when stored, or when this delivery was already stored (a vendor retrying after a lost answer
must not loop, and nothing is taken twice); 401 when the signature, timestamp or a header is wrong, as Xero
requires; 400 when a correctly signed body is not a JSON object; 413 above the size limit; 411 without a
Content-Length; 408 when the body does not arrive within `body_timeout_s`; 404 for any other path; 500,
with nothing stored, when storing fails. Work is left to the sensor that reads the inbox, so a delivery is
answered within milliseconds, well inside the vendors' timeouts.

The server is aiohttp's, on an event loop of its own thread: a connection costs no thread, so a crowd of
slow or half-sent requests cannot starve genuine deliveries. Only verifying and storing run on a small,
bounded pool of worker threads (storing is file or bucket I/O). A connection that sends no complete request
within `idle_timeout_s` is closed, as is one whose body stalls. Each refused or failed request is logged as
one line with its reason; nothing logged holds a body, a signature or a key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web

from unified_assets.webhooks.inbox import Inbox
from unified_assets.webhooks.signatures import Delivery, SignatureError

MAX_BODY_BYTES = 1 << 20
IDLE_TIMEOUT_S = 15.0  # a vendor sends its whole request at once; a slower client is not a vendor
BODY_TIMEOUT_S = 15.0
WORKER_THREADS = 4
LISTEN_BACKLOG = 1024  # a burst of deliveries waits in the kernel rather than being refused
logger = logging.getLogger(__name__)


class Verifier(Protocol):
    source: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> Delivery: ...


class WebhookReceiver:
    """Serves in a background thread; `port=0` picks a free loopback port (see `url`). The socket is
    bound at construction, so a port in use is an `OSError` here, not later in the thread."""

    def __init__(
        self,
        inbox: Inbox,
        verifiers: list[Verifier],
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ):
        self.inbox = inbox
        self.routes = {f"/webhooks/{v.source}": v for v in verifiers}
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self._socket = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
        self._workers = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="webhook-worker")
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._workers.shutdown(wait=True)
        self._socket.close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        """One delivery to (HTTP status, JSON answer); kept apart from the socket so tests can call it."""
        verifier = self.routes.get(path)
        if verifier is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no webhook endpoint at {path}"}
        try:
            delivery = verifier.verify(headers, body)
        except SignatureError as error:
            logger.warning("%s webhook refused: %s", verifier.source, error)
            return HTTPStatus.UNAUTHORIZED, {"error": str(error)}
        if not _is_json_object(body):
            logger.warning(
                "%s webhook refused: the signed body is not a JSON object", verifier.source
            )
            return HTTPStatus.BAD_REQUEST, {"error": "the body is not a JSON object"}
        item = self.inbox.put(delivery)
        if item is None:
            return HTTPStatus.OK, {
                "status": "duplicate",
                "detail": "already received; not stored again",
            }
        return HTTPStatus.OK, {"status": "stored", "item": item.name}

    async def _open(self) -> None:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{path:.*}", self._serve)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.idle_timeout_s,
            logger=OneLineLogger(logger),
            shutdown_timeout=5.0,
        )
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket, backlog=LISTEN_BACKLOG).start()

    async def _serve(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await request.read()
        except TimeoutError:
            logger.warning(
                "webhook from %s refused: the body did not arrive within %.0f s",
                request.remote,
                self.body_timeout_s,
            )
            return _answer(HTTPStatus.REQUEST_TIMEOUT, {"error": "the body arrived too slowly"})
        headers = dict(request.headers)
        try:
            status, payload = await self._loop.run_in_executor(
                self._workers, self.handle, request.path, headers, body
            )
        except Exception as error:  # an inbox that cannot be written: the vendor retries later
            logger.error(
                "webhook to %s not stored: %s: %s", request.path, type(error).__name__, error
            )
            return _answer(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "not stored; retry the delivery"}
            )
        return _answer(status, payload)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a request refused by its line and headers alone, before its body is read."""
        if request.method != "POST":
            return _answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "webhooks are POSTed"})
        if request.content_length is None:
            return _answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
        if request.content_length > self.max_body_bytes:
            logger.warning(
                "webhook to %s refused: %d bytes, over the %d-byte limit",
                request.path,
                request.content_length,
                self.max_body_bytes,
            )
            # The unread body must not be taken as the next request: the connection is closed.
            return _answer(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"body over {self.max_body_bytes} bytes"},
                close=True,
            )
        return None


class OneLineLogger(logging.LoggerAdapter):
    """aiohttp logs a request it cannot parse (a malformed line, an oversized header) with a traceback;
    an operator needs one line saying what was wrong, and the log stays readable under an attack."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        error = _logged_error(kwargs.pop("exc_info", None))
        if error is not None:
            reason = getattr(error, "message", None) or str(error)  # aiohttp's parse errors
            msg = f"{msg}: {type(error).__name__}: {' '.join(str(reason).split())}"
        super().log(level, msg, *args, **kwargs)


def _logged_error(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]
    return sys.exc_info()[1] if exc_info else None


def _answer(status: int, payload: dict, close: bool = False) -> web.Response:
    response = web.json_response(payload, status=status)
    if close:
        response.force_close()
    return response


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False
