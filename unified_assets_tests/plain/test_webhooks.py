"""Webhook deliveries: signatures checked the way Zendesk and Xero sign them, each delivery stored once,
and an inbox that nothing outside it can be read through."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from unified_assets.places import S3Prefix
from unified_assets.webhooks.events import PayloadError, preferences_changed, urgent_ticket_id
from unified_assets.webhooks.inbox import Inbox, InboxError, InboxItem
from unified_assets.webhooks.receiver import WebhookReceiver
from unified_assets.webhooks.signatures import (
    SignatureError,
    XeroVerifier,
    ZendeskVerifier,
    hmac_sha256_base64,
)

ZENDESK_SECRET = "dGhpc19pc19hX3plbmRlc2tfc2lnbmluZ19zZWNyZXQ="
XERO_KEY = "x3r0-webhook-key-canary"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TICKET_EVENT = (
    b'{"type":"zen:event-type:ticket.created","id":"01J9","time":"2026-11-24T09:59:58Z",'
    b'"detail":{"id":"4821","priority":"URGENT","organization_id":"361"}}'
)
INVOICE_EVENT = (
    b'{"events":[{"resourceId":"a1b2","eventCategory":"INVOICE","eventType":"UPDATE",'
    b'"eventDateUtc":"2026-11-24T09:59:58.000"}],"firstEventSequence":7,"lastEventSequence":7,'
    b'"entropy":"QWERTYUIOPASDFGHJKLZ"}'
)


def zendesk_headers(body: bytes, when: datetime = NOW, invocation: str = "inv-1", secret=None):
    timestamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": hmac_sha256_base64(
            secret or ZENDESK_SECRET, timestamp.encode() + body
        ),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "X-Zendesk-Webhook-Invocation-Id": invocation,
    }


def xero_headers(body: bytes, key: str = XERO_KEY):
    return {"x-xero-signature": hmac_sha256_base64(key, body)}


@pytest.fixture
def zendesk():
    return ZendeskVerifier(ZENDESK_SECRET, clock=NOW.timestamp)


# ------------------------------------------------------------------------------------------ signatures


def test_a_correctly_signed_zendesk_delivery_is_known_by_its_invocation_id(zendesk):
    delivery = zendesk.verify(zendesk_headers(TICKET_EVENT), TICKET_EVENT)
    assert (delivery.source, delivery.delivery_id, delivery.body) == (
        "support",
        "inv-1",
        TICKET_EVENT,
    )


def test_header_names_are_case_insensitive(zendesk):
    headers = {k.lower(): v for k, v in zendesk_headers(TICKET_EVENT).items()}
    assert zendesk.verify(headers, TICKET_EVENT).body == TICKET_EVENT


def reserialised(body: bytes) -> bytes:
    return json.dumps(json.loads(body), indent=1, sort_keys=True).encode()


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (zendesk_headers(TICKET_EVENT), TICKET_EVENT.replace(b"URGENT", b"LOW"), "does not match"),
        (zendesk_headers(TICKET_EVENT, secret="another-secret"), TICKET_EVENT, "does not match"),
        (zendesk_headers(TICKET_EVENT), reserialised(TICKET_EVENT), "does not match"),
        (
            {**zendesk_headers(TICKET_EVENT), "X-Zendesk-Webhook-Signature-Timestamp": "yesterday"},
            TICKET_EVENT,
            "does not match",  # the timestamp is part of what is signed
        ),
        (
            zendesk_headers(TICKET_EVENT, when=datetime(2026, 11, 24, 9, 50, tzinfo=UTC)),
            TICKET_EVENT,
            "600 s old",
        ),
        (
            zendesk_headers(TICKET_EVENT, when=datetime(2026, 11, 24, 10, 10, tzinfo=UTC)),
            TICKET_EVENT,
            "600 s in the future",
        ),
    ],
    ids=[
        "tampered body",
        "wrong secret",
        "re-serialised JSON",
        "timestamp swapped",
        "stale",
        "future",
    ],
)
def test_zendesk_deliveries_that_are_not_genuine_and_fresh_are_refused(
    zendesk, headers, body, message
):
    with pytest.raises(SignatureError, match=message) as refused:
        zendesk.verify(headers, body)
    assert ZENDESK_SECRET not in str(refused.value)
    assert headers["X-Zendesk-Webhook-Signature"] not in str(refused.value)


@pytest.mark.parametrize(
    "missing", ["X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"]
)
def test_a_missing_zendesk_header_is_named(zendesk, missing):
    headers = zendesk_headers(TICKET_EVENT)
    del headers[missing]
    with pytest.raises(SignatureError, match=f"header {missing} is missing"):
        zendesk.verify(headers, TICKET_EVENT)


def test_a_signed_but_unparseable_zendesk_timestamp_is_named():
    timestamp = "24/11/2026 10:00"
    headers = {
        "X-Zendesk-Webhook-Signature": hmac_sha256_base64(
            ZENDESK_SECRET, timestamp.encode() + TICKET_EVENT
        ),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
    with pytest.raises(SignatureError, match="not an ISO 8601 time"):
        ZendeskVerifier(ZENDESK_SECRET, clock=NOW.timestamp).verify(headers, TICKET_EVENT)


def test_xero_style_signatures_cover_the_raw_body():
    verifier = XeroVerifier(XERO_KEY)
    delivery = verifier.verify(xero_headers(INVOICE_EVENT), INVOICE_EVENT)
    assert delivery.source == "accounting" and len(delivery.delivery_id) == 64
    for headers, body in [
        (xero_headers(INVOICE_EVENT), INVOICE_EVENT.replace(b"UPDATE", b"DELETE")),
        (xero_headers(INVOICE_EVENT, key="wrong-key"), INVOICE_EVENT),
        (xero_headers(INVOICE_EVENT), reserialised(INVOICE_EVENT)),
        ({}, INVOICE_EVENT),
    ]:
        with pytest.raises(SignatureError) as refused:
            verifier.verify(headers, body)
        assert XERO_KEY not in str(refused.value)


def test_an_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError, match="secret is empty"):
        ZendeskVerifier("")
    with pytest.raises(ValueError, match="key is empty"):
        XeroVerifier("")


# ----------------------------------------------------------------------------------------------- inbox


def deliver(inbox: Inbox, body: bytes, invocation: str):
    verifier = ZendeskVerifier(ZENDESK_SECRET, clock=NOW.timestamp)
    return inbox.put(verifier.verify(zendesk_headers(body, invocation=invocation), body))


@pytest.fixture(params=["folder", "bucket"])
def open_inbox(request, tmp_path) -> Callable[[], Inbox]:
    """Opens the same inbox again (a receiver restarted), in each of its homes."""
    if request.param == "folder":
        return lambda: Inbox.in_folder(tmp_path / "inbox")
    s3_server = request.getfixturevalue("s3_server")
    url = f"s3://{s3_server.create_bucket()}/inbox"
    return lambda: Inbox.in_bucket(S3Prefix(url, s3_server.settings(), tmp_path / "extensions"))


def test_the_inbox_keeps_each_delivery_once_in_arrival_order_across_restarts(open_inbox):
    inbox = open_inbox()
    first = deliver(inbox, TICKET_EVENT, "inv-1")
    second = deliver(inbox, TICKET_EVENT.replace(b"4821", b"4822"), "inv-2")
    assert deliver(inbox, TICKET_EVENT, "inv-1") is None
    assert inbox.items("support") == [first, second]
    assert inbox.items("support", after=first.name) == [second]
    assert inbox.read(first) == TICKET_EVENT
    restarted = open_inbox()
    assert deliver(restarted, TICKET_EVENT, "inv-1") is None, "a replay after a restart"
    assert len(restarted.items("support")) == 2


def test_nothing_outside_the_inbox_can_be_read_through_a_crafted_name(tmp_path):
    inbox = Inbox.in_folder(tmp_path / "inbox")
    deliver(inbox, TICKET_EVENT, "inv-1")
    secret_file = tmp_path / "secret.json"
    secret_file.write_text('{"token": "do-not-read"}')
    planted = f"{'9' * 20}-{'a' * 32}.json"
    os.symlink(secret_file, tmp_path / "inbox" / "support" / planted)
    (tmp_path / "inbox" / "support" / ".half-written.tmp").write_bytes(b"{")
    assert [item.name for item in inbox.items("support")] != [] and all(
        item.name != planted for item in inbox.items("support")
    )
    for source, name in [
        ("support", planted),
        ("support", "../../secret.json"),
        ("support", f"{'1' * 20}-{'b' * 32}.json/../../../secret.json"),
        ("../..", "secret.json"),
        ("accounting", "/etc/passwd"),
    ]:
        with pytest.raises(InboxError):
            inbox.read(InboxItem(source, name))
    with pytest.raises(InboxError, match="unknown webhook source"):
        inbox.items("../support")


# -------------------------------------------------------------------------------------------- receiver


@pytest.fixture
def receiver(tmp_path):
    verifiers = [ZendeskVerifier(ZENDESK_SECRET, clock=NOW.timestamp), XeroVerifier(XERO_KEY)]
    with WebhookReceiver(
        Inbox.in_folder(tmp_path / "inbox"), verifiers, max_body_bytes=4096
    ) as running:
        yield running


def post(receiver: WebhookReceiver, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(receiver.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_receiver_stores_verified_deliveries_once_and_refuses_the_rest(receiver):
    assert post(receiver, "/webhooks/support", TICKET_EVENT, zendesk_headers(TICKET_EVENT)) == (
        200,
        {"status": "stored", "item": receiver.inbox.items("support")[0].name},
    )
    replayed = post(receiver, "/webhooks/support", TICKET_EVENT, zendesk_headers(TICKET_EVENT))
    assert replayed[0] == 200 and replayed[1]["status"] == "duplicate"
    status, answer = post(
        receiver, "/webhooks/accounting", INVOICE_EVENT, xero_headers(INVOICE_EVENT, key="nope")
    )
    assert status == 401 and "x-xero-signature" in answer["error"]
    assert (
        post(receiver, "/webhooks/accounting", INVOICE_EVENT, xero_headers(INVOICE_EVENT))[0] == 200
    )
    assert len(receiver.inbox.items("support")) == 1
    assert len(receiver.inbox.items("accounting")) == 1


def test_signed_bodies_that_are_not_json_objects_are_bad_requests(receiver):
    for body in [b"not json", b"[1, 2]", b"\xff\xfe"]:
        assert post(receiver, "/webhooks/accounting", body, xero_headers(body))[0] == 400
    assert receiver.inbox.items("accounting") == []


def test_oversized_unknown_and_unlengthed_requests_are_refused(receiver):
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    assert post(receiver, "/webhooks/accounting", big, xero_headers(big))[0] == 413
    assert (
        post(receiver, "/webhooks/../../etc", INVOICE_EVENT, xero_headers(INVOICE_EVENT))[0] == 404
    )
    host, port = receiver.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(
            b"POST /webhooks/support HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert raw.recv(1024).startswith(b"HTTP/1.1 411")
    assert receiver.inbox.items("accounting") == []


def test_items_keep_arrival_order_when_the_wall_clock_steps_back(tmp_path, monkeypatch):
    readings = iter([2_000_000_000_000_000_000, 1_000_000_000_000_000_000])
    monkeypatch.setattr("unified_assets.webhooks.inbox.time.time_ns", lambda: next(readings))
    inbox = Inbox.in_folder(tmp_path / "inbox")
    first = deliver(inbox, TICKET_EVENT, "inv-1")
    second = deliver(inbox, TICKET_EVENT, "inv-2")
    assert first.name < second.name
    assert inbox.items("support", after=first.name) == [second]


# ---------------------------------------------------------------------------------------- payloads


def test_what_a_verified_body_says():
    assert urgent_ticket_id(TICKET_EVENT) == 4821
    normal = TICKET_EVENT.replace(b'"URGENT"', b'"NORMAL"')
    assert urgent_ticket_id(normal) is None
    solved = TICKET_EVENT.replace(b"ticket.created", b"ticket.status_changed")
    assert urgent_ticket_id(solved) is None
    preferences = (
        b'{"eventNotifications":[{"realmId":"1","dataChangeEvent":{"entities":'
        b'[{"name":"Preferences","id":"1","operation":"Update"}]}}]}'
    )
    assert preferences_changed(preferences)
    assert not preferences_changed(preferences.replace(b"Preferences", b"Invoice"))


@pytest.mark.parametrize(
    ("reader", "body", "message"),
    [
        ("support", b"[1]", "not a JSON object"),
        ("support", b"\xff", "not JSON"),
        ("support", b'{"type":"zen:event-type:ticket.created"}', "no `detail`"),
        ("support", TICKET_EVENT.replace(b'"4821"', b'"x"'), "not a ticket id"),
        ("accounting", b'{"events":[]}', "no `eventNotifications`"),
        ("accounting", b'{"eventNotifications":[{}]}', "no `dataChangeEvent.entities`"),
    ],
)
def test_signed_bodies_of_the_wrong_shape_say_what_is_missing(reader, body, message):
    read = urgent_ticket_id if reader == "support" else preferences_changed
    with pytest.raises(PayloadError, match=message):
        read(body)


def test_the_simulators_webhooks_verify_and_say_what_happened(tmp_path, demo_config):
    """The simulated vendors sign as the real ones: the receiver's verifiers accept them, a copy sent
    with another key is refused, and the bodies name the urgent ticket and the changed preferences."""
    from saas_simulator.clock import SimClock
    from saas_simulator.credentials import SimCredentials
    from saas_simulator.webhooks import WebhookEmitter
    from saas_simulator.world import World

    demo = SimCredentials.demo()
    world = World(demo_config, clock=SimClock.frozen("2026-08-04T00:00:00Z"))
    verifiers = [
        ZendeskVerifier(demo.zendesk_webhook_secret),
        XeroVerifier(demo.accounting_webhook_key),
    ]
    with WebhookReceiver(Inbox.in_folder(tmp_path / "inbox"), verifiers) as receiver:
        subscriptions = {s: f"{receiver.url}/webhooks/{s}" for s in ("support", "accounting")}
        sent = WebhookEmitter(world, subscriptions, demo).deliver(
            datetime(2026, 7, 27, tzinfo=UTC).timestamp(), world.clock.timestamp()
        )
        impostor = WebhookEmitter(world, subscriptions, SimCredentials.generate(seed=3))
        assert (
            impostor.deliver(datetime(2026, 7, 27, tzinfo=UTC).timestamp(), world.clock.timestamp())
            == 0
        )
    inbox = Inbox.in_folder(tmp_path / "inbox")
    tickets = [urgent_ticket_id(inbox.read(item)) for item in inbox.items("support")]
    closes = [preferences_changed(inbox.read(item)) for item in inbox.items("accounting")]
    assert sent == len(tickets) + len(closes)
    assert tickets and all(isinstance(ticket, int) for ticket in tickets)
    assert closes == [True], "July's books close on August 3rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_to(url: str, body: bytes, headers: dict) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_webhook_companion_of_dagster_dev_receives_and_stops_cleanly(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from saas_simulator.credentials import SimCredentials

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFIED_ASSETS_")}
    env |= {
        "UNIFIED_ASSETS_DATA_DIR": str(tmp_path),
        "UNIFIED_ASSETS_SIM_CLOCK": "frozen:2026-08-01T00:00:00Z",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "unified_assets.webhooks", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        secret = SimCredentials.demo().zendesk_webhook_secret
        url = f"http://127.0.0.1:{port}/webhooks/support"
        deadline = time.monotonic() + 30
        while True:
            try:
                headers = zendesk_headers(TICKET_EVENT, datetime.now(UTC), secret=secret)
                status = post_to(url, TICKET_EVENT, headers)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
                time.sleep(0.2)
        assert status == 200
        assert len(Inbox.in_folder(tmp_path / "inbox").items("support")) == 1
        forged = zendesk_headers(TICKET_EVENT, datetime.now(UTC), invocation="inv-2")
        assert post_to(url, TICKET_EVENT, forged) == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert secret not in output


# ---------------------------------------------------------------------------------- receiver under load

LOAD_CLIENTS = 50


@pytest.fixture
def receiver_under_load(tmp_path):
    """A receiver with short timeouts, so the half-sent connections' fate is seen within the test."""
    verifiers = [ZendeskVerifier(ZENDESK_SECRET, clock=NOW.timestamp), XeroVerifier(XERO_KEY)]
    with WebhookReceiver(
        Inbox.in_folder(tmp_path / "inbox"), verifiers, idle_timeout_s=1.0, body_timeout_s=1.0
    ) as running:
        yield running


def genuine_ticket(number: int) -> tuple[bytes, dict]:
    body = TICKET_EVENT.replace(b'"4821"', f'"{number}"'.encode())
    return body, zendesk_headers(body, invocation=f"inv-{number}")


def forged_ticket(number: int) -> tuple[bytes, dict]:
    body = TICKET_EVENT.replace(b'"4821"', f'"{number}"'.encode())
    return body, zendesk_headers(body, invocation=f"forged-{number}", secret="not-the-secret")


def receiver_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("webhook")]


def half_sent(receiver: WebhookReceiver, request: bytes) -> socket.socket:
    host, port = receiver.url.removeprefix("http://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=30)
    raw.sendall(request)
    return raw


def read_until_closed(raw: socket.socket) -> bytes:
    """What the server sent before it closed the connection (the socket's timeout ends a hung test)."""
    received = b""
    while chunk := raw.recv(4096):
        received += chunk
    raw.close()
    return received


def test_under_load_every_genuine_delivery_is_stored_once_and_answered_and_half_sent_ones_time_out(
    receiver_under_load, caplog
):
    """500 requests from 50 concurrent clients (250 genuine, 200 forged, 50 replays of genuine ones)
    while 200 connections hang half-sent: the standard library's threading server dropped 10 of these
    (5 genuine), held a thread per hanging connection and logged tracebacks."""
    receiver = receiver_under_load
    caplog.set_level(logging.INFO, logger="unified_assets.webhooks")
    hanging = [
        half_sent(receiver, b"POST /webhooks/support HTTP/1.1\r\nHost: x\r\nContent-Le")
        for _ in range(100)
    ] + [
        half_sent(
            receiver,
            b'POST /webhooks/support HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{"half',
        )
        for _ in range(100)
    ]
    genuine = [genuine_ticket(n) for n in range(250)]
    requests = genuine + [forged_ticket(n) for n in range(200)] + genuine[:50]
    random.Random(7).shuffle(requests)
    threads_seen: set[str] = set()

    def deliver(request: tuple[bytes, dict]) -> int:
        threads_seen.update(receiver_threads())
        return post(receiver, "/webhooks/support", *request)[0]

    with ThreadPoolExecutor(LOAD_CLIENTS) as clients:
        statuses = list(clients.map(deliver, requests))

    kinds = [headers["X-Zendesk-Webhook-Invocation-Id"].split("-")[0] for _, headers in requests]
    answered = Counter(zip(kinds, statuses, strict=True))
    assert answered == {("inv", 200): 300, ("forged", 401): 200}
    stored = receiver.inbox.items("support")
    assert len(stored) == 250
    assert sorted(receiver.inbox.read(item) for item in stored) == sorted(b for b, _ in genuine)
    assert len(threads_seen) <= 1 + 4, (
        f"one event loop and a bounded pool of workers: {threads_seen}"
    )

    endings = [read_until_closed(raw) for raw in hanging]
    assert endings[:100] == [b""] * 100, "an idle connection is closed without an answer"
    assert all(ending.startswith(b"HTTP/1.1 408") for ending in endings[100:])

    lines = [record.getMessage() for record in caplog.records]
    assert all(
        record.exc_info is None and "\n" not in record.getMessage() for record in caplog.records
    )
    assert sum("support webhook refused" in line for line in lines) == 200
    assert sum("did not arrive within" in line for line in lines) == 100
    assert not any(ZENDESK_SECRET in line for line in lines)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /webhooks/support HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"POST /webhooks/support HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    ],
    ids=["not-http", "malformed-header", "negative-length"],
)
def test_a_malformed_request_is_a_400_and_one_log_line(receiver_under_load, caplog, request_bytes):
    caplog.set_level(logging.DEBUG, logger="unified_assets.webhooks")
    answer = read_until_closed(half_sent(receiver_under_load, request_bytes))
    assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), answer
    [record] = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert record.getMessage().startswith("Error handling request from 127.0.0.1: Bad")


def test_a_failing_inbox_is_a_500_and_one_log_line_and_the_delivery_can_be_retried(
    receiver_under_load, caplog, monkeypatch
):
    receiver = receiver_under_load
    body, headers = genuine_ticket(1)

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(receiver.inbox.store, "write", disk_full)
    status, answer = post(receiver, "/webhooks/support", body, headers)
    assert (status, answer) == (500, {"error": "not stored; retry the delivery"})
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None and "No space left on device" in record.getMessage()

    monkeypatch.undo()
    assert post(receiver, "/webhooks/support", body, headers) == (
        200,
        {"status": "stored", "item": receiver.inbox.items("support")[0].name},
    )
