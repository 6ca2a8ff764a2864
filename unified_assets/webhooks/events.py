"""What a verified webhook body says, in the terms the business-event sensors act on.

A webhook is a hint, not the record: the sensors read the ticket or the company's preferences from the API
before acting, so a body only has to say which ticket or that the preferences changed.
"""

from __future__ import annotations

import json
from typing import Any

URGENT_TICKET_EVENTS = ("zen:event-type:ticket.created", "zen:event-type:ticket.priority_changed")


class PayloadError(ValueError):
    """A correctly signed body that does not have the shape the vendor documents."""


def urgent_ticket_id(body: bytes) -> int | None:
    """The ticket a Zendesk event webhook announces as urgent (created so, or raised to it); None for
    any other event."""
    event = _json_object(body, "support")
    if event.get("type") not in URGENT_TICKET_EVENTS:
        return None
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise PayloadError("support webhook: event has no `detail` object")
    if str(detail.get("priority", "")).upper() != "URGENT":
        return None
    try:
        return int(detail["id"])
    except (KeyError, TypeError, ValueError):
        raise PayloadError("support webhook: `detail.id` is not a ticket id") from None


def preferences_changed(body: bytes) -> bool:
    """Whether an accounting data-change notification includes the company's Preferences, which is
    where the month-end close (the book close date) lives."""
    notification = _json_object(body, "accounting")
    batches = notification.get("eventNotifications")
    if not isinstance(batches, list):
        raise PayloadError("accounting webhook: no `eventNotifications` list")
    for batch in batches:
        entities = (
            (batch.get("dataChangeEvent") or {}).get("entities")
            if isinstance(batch, dict)
            else None
        )
        if not isinstance(entities, list):
            raise PayloadError(
                "accounting webhook: a notification has no `dataChangeEvent.entities`"
            )
        if any(isinstance(e, dict) and e.get("name") == "Preferences" for e in entities):
            return True
    return False


def _json_object(body: bytes, source: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError(f"{source} webhook: body is not JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"{source} webhook: body is not a JSON object")
    return payload
