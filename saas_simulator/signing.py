"""How each simulated vendor signs the webhooks it sends, written from the vendors' documentation.

This is deliberately not the platform's receiver code (`unified_assets.webhooks.signatures`): a sender that
signed with the receiver's own function would agree with it even if both misread the scheme. Known-answer
vectors in the tests pin each scheme to values computed by an independent tool (OpenSSL).

- Zendesk ("Verifying webhook authenticity"): `X-Zendesk-Webhook-Signature` is
  base64(HMAC-SHA256(signing secret, timestamp + body)), with the timestamp sent as
  `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601, UTC) and each delivery named by
  `X-Zendesk-Webhook-Invocation-Id`.
- Xero ("Webhooks: intent to receive"): `x-xero-signature` is base64(HMAC-SHA256(webhook key, body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_INVOCATION_HEADER = "X-Zendesk-Webhook-Invocation-Id"
XERO_SIGNATURE_HEADER = "x-xero-signature"


def zendesk_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """The signature Zendesk sends for `body` delivered at `timestamp` (the header's exact text)."""
    return _base64_hmac_sha256(signing_secret.encode(), timestamp.encode() + body)


def zendesk_headers(
    signing_secret: str, timestamp: str, invocation_id: str, body: bytes
) -> dict[str, str]:
    """The headers of one signed Zendesk delivery, besides the content type."""
    return {
        ZENDESK_SIGNATURE_HEADER: zendesk_signature(signing_secret, timestamp, body),
        ZENDESK_TIMESTAMP_HEADER: timestamp,
        ZENDESK_INVOCATION_HEADER: invocation_id,
    }


def xero_signature(webhook_key: str, body: bytes) -> str:
    """The signature Xero sends for `body`: the payload alone, no timestamp."""
    return _base64_hmac_sha256(webhook_key.encode(), body)


def _base64_hmac_sha256(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")
