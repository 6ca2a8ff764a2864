"""Checking that a webhook delivery comes from the vendor, the way each vendor signs it.

Zendesk signs `timestamp + raw body` (HMAC-SHA256, base64) and sends the timestamp beside the signature, so
a delivery older than a few minutes is refused, and a fresh one is known by its invocation id. Xero signs the
raw body alone (`x-xero-signature`); its deliveries carry no timestamp, so one is known by the body's digest
(every delivery holds a random `entropy` field). The inbox uses that id to take each delivery once: a
captured request replayed later is either stale or a copy of one already taken.

Signatures are computed over the bytes as received: a body parsed and serialised again (other spacing, other
key order) no longer matches, which is why nothing here ever re-encodes JSON. Comparisons are constant-time,
and no error message contains a secret or the signature that was expected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_INVOCATION = "X-Zendesk-Webhook-Invocation-Id"
XERO_SIGNATURE = "x-xero-signature"
DEFAULT_TOLERANCE_S = 300  # how far a Zendesk timestamp may be from our clock, either way


class SignatureError(ValueError):
    """A delivery that must be refused (HTTP 401); the message says which header and why."""


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: the raw body and the id that makes a second copy recognisable."""

    source: str
    delivery_id: str
    body: bytes


def hmac_sha256_base64(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


class ZendeskVerifier:
    source = "support"

    def __init__(
        self,
        secret: str,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ):
        if not secret:
            raise ValueError("the Zendesk webhook signing secret is empty")
        self._secret = secret
        self.tolerance_s = tolerance_s
        self.clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        signature = _header(headers, ZENDESK_SIGNATURE)
        timestamp = _header(headers, ZENDESK_TIMESTAMP)
        expected = hmac_sha256_base64(self._secret, timestamp.encode() + body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureError(f"{ZENDESK_SIGNATURE} does not match the body and timestamp")
        age = self.clock() - _parse_timestamp(timestamp)
        if age > self.tolerance_s:
            raise SignatureError(
                f"{ZENDESK_TIMESTAMP} is {age:.0f} s old; older than {self.tolerance_s:.0f} s is "
                "refused (a replayed delivery, or a clock far off)"
            )
        if -age > self.tolerance_s:
            raise SignatureError(
                f"{ZENDESK_TIMESTAMP} is {-age:.0f} s in the future; more than "
                f"{self.tolerance_s:.0f} s is refused"
            )
        invocation = _optional_header(headers, ZENDESK_INVOCATION)
        delivery_id = invocation or hashlib.sha256(timestamp.encode() + body).hexdigest()
        return Delivery(self.source, delivery_id, body)


class XeroVerifier:
    """Xero-style: `x-xero-signature` is the HMAC of the raw body with the webhook key."""

    source = "accounting"

    def __init__(self, key: str):
        if not key:
            raise ValueError("the accounting webhook key is empty")
        self._key = key

    def verify(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        signature = _header(headers, XERO_SIGNATURE)
        expected = hmac_sha256_base64(self._key, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureError(f"{XERO_SIGNATURE} does not match the body")
        return Delivery(self.source, hashlib.sha256(body).hexdigest(), body)


def _optional_header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = _optional_header(headers, name)
    if not value:
        raise SignatureError(f"header {name} is missing")
    return value


def _parse_timestamp(value: str) -> float:
    """Zendesk's timestamp is ISO 8601 in UTC (`2026-11-24T10:00:00Z`)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(f"{ZENDESK_TIMESTAMP} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise SignatureError(f"{ZENDESK_TIMESTAMP} has no time zone")
    return parsed.timestamp()
