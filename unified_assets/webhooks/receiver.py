"""A small HTTP endpoint for the vendors' webhooks: verify, store in the inbox, answer fast.

    POST /webhooks/support      Zendesk (X-Zendesk-Webhook-Signature + timestamp)
    POST /webhooks/accounting   the accounting system (x-xero-signature)

Answers: 200 when stored, or when this delivery was already stored (a vendor retrying after a lost answer
must not loop, and nothing is taken twice); 401 when the signature, timestamp or a header is wrong, as Xero
requires; 400 when a correctly signed body is not a JSON object; 413 above the size limit; 411 without a
Content-Length; 404 for any other path. Work is left to the sensor that reads the inbox, so a delivery is
answered within milliseconds, well inside the vendors' timeouts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from unified_assets.webhooks.inbox import Inbox
from unified_assets.webhooks.signatures import Delivery, SignatureError

MAX_BODY_BYTES = 1 << 20
logger = logging.getLogger(__name__)


class Verifier(Protocol):
    source: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> Delivery: ...


class WebhookReceiver:
    """Serves in a background thread; `port=0` picks a free loopback port (see `url`)."""

    def __init__(
        self,
        inbox: Inbox,
        verifiers: list[Verifier],
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        self.inbox = inbox
        self.routes = {f"/webhooks/{v.source}": v for v in verifiers}
        self.max_body_bytes = max_body_bytes
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

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
            return HTTPStatus.BAD_REQUEST, {"error": "the body is not a JSON object"}
        item = self.inbox.put(delivery)
        if item is None:
            return HTTPStatus.OK, {
                "status": "duplicate",
                "detail": "already received; not stored again",
            }
        return HTTPStatus.OK, {"status": "stored", "item": item.name}


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
                return
            if int(length) > receiver.max_body_bytes:
                self.close_connection = (
                    True  # the unread body must not be taken as the next request
                )
                self._answer(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"body over {receiver.max_body_bytes} bytes"},
                )
                return
            body = self.rfile.read(int(length))
            headers = {key: value for key, value in self.headers.items()}
            self._answer(*receiver.handle(self.path, headers, body))

        def do_GET(self) -> None:
            self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "webhooks are POSTed"})

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("webhook receiver: " + format, *args)

        def _answer(self, status: int, payload: dict) -> None:
            encoded = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

    return Handler
