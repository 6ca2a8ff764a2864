"""What the server and the vendor modules exchange: a request, a response, the serving context.

Vendor modules (`quickbooks`, `coupa`, `zendesk`) never touch sockets; they turn an `ApiRequest`
into an `ApiResponse` using a consistent snapshot of the world. The server owns transport, rate
limits and faults.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saas_simulator.worldview import WorldView


@dataclass
class ApiRequest:
    method: str
    path: str  # below the system's base URL, e.g. "/v3/company/123/query"
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str  # the system's base URL as the client reached it

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) from an `Authorization: Basic` header, or None."""
        scheme, _, value = self.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


@dataclass
class ApiResponse:
    status: int
    body: Any  # JSON-serialisable, or bytes sent as they are
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    records: list[int] | None = (
        None  # record indices served, for faults that act on "what you received"
    )
    trickle_s: float = 0.0  # the trickled_body fault: seconds between the body's bytes


@dataclass
class ServeContext:
    """Everything a vendor handler needs for one request."""

    world: WorldView
    now: float
    duplicates: int = 0  # the duplicate_records fault: how many already-served records to re-serve
    drift: str | None = None  # a schema_drift mode in force for this system
    paging: str | None = None  # a paging fault (faults.PAGING_FAULTS) for this request
    applied: set[str] = field(default_factory=set)  # faults the handler could apply to this request
    ticket_updates: Any = None  # the support system's TicketUpdates: what bulk updates have written


class BadRequest(ValueError):
    """A query parameter the vendor would reject; its vendor module renders its own 400 body."""
