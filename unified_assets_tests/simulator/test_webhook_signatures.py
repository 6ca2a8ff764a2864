"""The simulated vendors sign webhooks as the vendors document, pinned by known-answer vectors.

The expected values were computed with OpenSSL, independently of Python's hmac and of both our signer and
our receiver, e.g. for the Zendesk vector:

    printf '%s' '2026-11-24T10:00:00Z{"type":...}' \
      | openssl dgst -sha256 -hmac 'dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==' -binary | base64

The key is used as its text (not base64-decoded), as both vendors' own sample code does.
"""

from __future__ import annotations

from saas_simulator.signing import (
    XERO_SIGNATURE_HEADER,
    ZENDESK_INVOCATION_HEADER,
    ZENDESK_SIGNATURE_HEADER,
    ZENDESK_TIMESTAMP_HEADER,
    xero_signature,
    zendesk_headers,
    zendesk_signature,
)
from unified_assets.webhooks.signatures import XeroVerifier, ZendeskVerifier

ZENDESK_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
ZENDESK_TIMESTAMP = "2026-11-24T10:00:00Z"
ZENDESK_BODY = b'{"type":"zen:event-type:ticket.created","id":"01HZX"}'
ZENDESK_EXPECTED = "VPRMKRc2Felpt014qdGXyULKYA+lo9LjSbd1ecYX8dg="

XERO_KEY = "Rg0TzTx0n8ZBbuXH0sBB3kOmbf9R9rT3"
XERO_BODY = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}'
XERO_EXPECTED = "IdKZ2YPYLhOgrzYg267zjl2+OO8wzst+yGVvwEL/9GU="


def test_zendesk_signs_the_timestamp_followed_by_the_body():
    assert zendesk_signature(ZENDESK_SECRET, ZENDESK_TIMESTAMP, ZENDESK_BODY) == ZENDESK_EXPECTED


def test_zendesk_headers_carry_signature_timestamp_and_invocation():
    headers = zendesk_headers(ZENDESK_SECRET, ZENDESK_TIMESTAMP, "01HZX", ZENDESK_BODY)
    assert headers == {
        ZENDESK_SIGNATURE_HEADER: ZENDESK_EXPECTED,
        ZENDESK_TIMESTAMP_HEADER: ZENDESK_TIMESTAMP,
        ZENDESK_INVOCATION_HEADER: "01HZX",
    }


def test_xero_signs_the_body_alone():
    assert xero_signature(XERO_KEY, XERO_BODY) == XERO_EXPECTED


def test_a_signature_depends_on_every_byte_signed():
    assert (
        zendesk_signature(ZENDESK_SECRET, ZENDESK_TIMESTAMP, ZENDESK_BODY + b" ")
        != ZENDESK_EXPECTED
    )
    assert (
        zendesk_signature(ZENDESK_SECRET, "2026-11-24T10:00:01Z", ZENDESK_BODY) != ZENDESK_EXPECTED
    )
    assert xero_signature(XERO_KEY + "x", XERO_BODY) != XERO_EXPECTED


def test_the_platform_receiver_accepts_the_vectors():
    """The receiver was written separately from the signer; both agree with OpenSSL, hence each other."""
    received = ZendeskVerifier(ZENDESK_SECRET, clock=lambda: 1_795_514_400.0).verify(
        {ZENDESK_SIGNATURE_HEADER: ZENDESK_EXPECTED, ZENDESK_TIMESTAMP_HEADER: ZENDESK_TIMESTAMP},
        ZENDESK_BODY,
    )
    assert received.body == ZENDESK_BODY
    assert (
        XeroVerifier(XERO_KEY).verify({XERO_SIGNATURE_HEADER: XERO_EXPECTED}, XERO_BODY).body
        == XERO_BODY
    )
