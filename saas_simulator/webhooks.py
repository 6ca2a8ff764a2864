"""The simulated vendors' webhooks: business events of the world, signed and POSTed as each vendor does.

Two events, both also readable from the vendors' APIs (a consumer that misses a delivery still finds them):

- support (Zendesk event webhook): a ticket that became priority urgent, either created so
  (`zen:event-type:ticket.created`) or raised to it (`zen:event-type:ticket.priority_changed`). Signed
  with `X-Zendesk-Webhook-Signature` = base64 HMAC-SHA256 of timestamp + body.
- accounting (QuickBooks-style data-change notification): the company's Preferences changed because a
  month was closed (`BookCloseDate`). Signed Xero-style: `x-xero-signature` = base64 HMAC-SHA256 of the body.

`WebhookEmitter.deliver(after, until)` sends what happened in (after, until] by the world's clock; `start()`
does that every `interval_s` in a thread. A failed delivery is retried a few times and then dropped, as the
vendors do; the feeds remain the safety net.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import requests

from saas_simulator.closing import BookClose, closes_between
from saas_simulator.credentials import SimCredentials
from saas_simulator.signing import XERO_SIGNATURE_HEADER, xero_signature, zendesk_headers
from saas_simulator.timeutil import iso_la, iso_z
from saas_simulator.world import World

logger = logging.getLogger(__name__)
URGENT = "urgent"
ZENDESK_ACCOUNT_ID = 10_442_871


@dataclass(frozen=True)
class Outgoing:
    system: str
    body: bytes
    headers: dict[str, str]


def urgent_ticket_events(world: World, after: float, until: float) -> list[dict]:
    """Zendesk event payloads for every ticket update in (after, until] that made a ticket urgent:
    created urgent, or raised to urgent by that update. Each version counts, not only the latest, so a
    ticket that became urgent and was answered within the window is still announced."""
    view = world.view("support", until)
    index = view.index
    low = int(np.searchsorted(index.ts, math.floor(after) + 1, side="left"))
    high = int(np.searchsorted(index.ts, math.floor(until) + 1, side="left"))
    records, versions = index.record[low:high], index.version[low:high]
    events = []
    for ticket, record, version in zip(
        world.render(view, records, versions), records.tolist(), versions.tolist(), strict=True
    ):
        if ticket["priority"] != URGENT or ticket["status"] == "deleted":
            continue
        previous = None
        if version > 0:
            (previous,) = world.render(view, np.array([record]), np.array([version - 1]))
            if previous["priority"] == URGENT:
                continue
        events.append(_zendesk_event(ticket, previous))
    return events


def _zendesk_event(ticket: dict, previous: dict | None) -> dict:
    detail = {
        "id": str(ticket["id"]),
        "subject": ticket["subject"],
        "priority": URGENT.upper(),
        "status": str(ticket["status"]).upper(),
        "organization_id": str(ticket["organization_id"]),
        "requester_id": str(ticket["requester_id"]),
        "created_at": ticket["created_at"],
        "updated_at": ticket["updated_at"],
    }
    created = previous is None
    return {
        "account_id": ZENDESK_ACCOUNT_ID,
        "detail": detail,
        "event": {} if created else {"current": "URGENT", "previous": previous["priority"].upper()},
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"zendesk/{ticket['id']}/{ticket['updated_at']}")),
        "subject": f"zen:ticket:{ticket['id']}",
        "time": ticket["updated_at"],
        "type": "zen:event-type:ticket." + ("created" if created else "priority_changed"),
        "zendesk_event_version": "2022-11-06",
    }


def book_close_notification(realm_id: str, close: BookClose) -> dict:
    """QuickBooks' data-change notification for the Preferences entity, as sent when books close."""
    return {
        "eventNotifications": [
            {
                "realmId": realm_id,
                "dataChangeEvent": {
                    "entities": [
                        {
                            "name": "Preferences",
                            "id": "1",
                            "operation": "Update",
                            "lastUpdated": iso_la(close.closed_at),
                        }
                    ]
                },
            }
        ]
    }


class WebhookEmitter:
    """Sends the world's events to the subscribed URLs (`{"support": url, "accounting": url}`)."""

    def __init__(
        self,
        world: World,
        subscriptions: dict[str, str],
        credentials: SimCredentials | None = None,
        interval_s: float = 5.0,
    ):
        self.world = world
        self.subscriptions = subscriptions
        self.credentials = credentials or SimCredentials.demo()
        self.interval_s = interval_s
        self.delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def outgoing(self, after: float, until: float) -> list[Outgoing]:
        messages = []
        if "support" in self.subscriptions:
            for event in urgent_ticket_events(self.world, after, until):
                messages.append(self._signed_zendesk(event))
        if "accounting" in self.subscriptions:
            start = self.world.config.history_start
            for close in closes_between(start, after, until):
                body = _json(book_close_notification(self.credentials.realm_id, close))
                signature = xero_signature(self.credentials.accounting_webhook_key, body)
                messages.append(Outgoing("accounting", body, {XERO_SIGNATURE_HEADER: signature}))
        return messages

    def deliver(self, after: float, until: float) -> int:
        """POST every event in (after, until]; returns how many were accepted."""
        accepted = 0
        for message in self.outgoing(after, until):
            accepted += self._post(message)
        self.delivered += accepted
        return accepted

    def start(self) -> WebhookEmitter:
        self._thread = threading.Thread(target=self._run, name="simulator-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        last = self.world.clock.timestamp()
        while not self._stop.wait(self.interval_s):
            now = self.world.clock.timestamp()
            if now > last:
                try:
                    self.deliver(last, now)
                except Exception:  # a bad tick must not end the thread; the next one tries again
                    logger.exception("simulator webhooks: could not deliver events")
                last = now

    def _signed_zendesk(self, event: dict) -> Outgoing:
        body = _json(event)
        timestamp = iso_z(int(time.time()))
        secret = self.credentials.zendesk_webhook_secret
        return Outgoing("support", body, zendesk_headers(secret, timestamp, event["id"], body))

    def _post(self, message: Outgoing, attempts: int = 3) -> int:
        url = self.subscriptions[message.system]
        headers = {"Content-Type": "application/json", **message.headers}
        for attempt in range(attempts):
            try:
                response = requests.post(url, data=message.body, headers=headers, timeout=5)
                if response.status_code == 200:
                    return 1
                if response.status_code < 500:
                    logger.warning(f"{message.system} webhook refused: HTTP {response.status_code}")
                    return 0
            except requests.RequestException as error:
                logger.info(f"{message.system} webhook not delivered ({type(error).__name__})")
            time.sleep(0.5 * (attempt + 1))
        return 0


def _json(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
