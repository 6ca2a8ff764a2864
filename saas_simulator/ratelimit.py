"""The vendors' documented request limits, enforced over a sliding window of real time."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from saas_simulator.world import SYSTEMS


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `per_seconds`; `retry_after`: whether a 429 says when to retry."""

    requests: int
    per_seconds: float
    retry_after: bool = False

    def __post_init__(self) -> None:
        if self.requests < 1 or not self.per_seconds > 0:
            raise ValueError(f"a rate limit needs requests >= 1 and per_seconds > 0, got {self}")

    @classmethod
    def parse(cls, text: str, retry_after: bool = False) -> RateLimit:
        """`<requests>/<seconds>`, e.g. `10/60`."""
        requests, sep, seconds = text.strip().partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(requests), float(seconds), retry_after)
        except ValueError:
            raise ValueError(
                f"bad rate limit {text!r}; use <requests>/<seconds>, e.g. 10/60"
            ) from None


# QuickBooks: 500 requests a minute per realm; Coupa: 25 a second; Zendesk incremental export: 10 a
# minute.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "accounting": RateLimit(500, 60.0, retry_after=False),
    "purchasing": RateLimit(25, 1.0, retry_after=False),
    "support": RateLimit(10, 60.0, retry_after=True),
}


def parse_rate_limits(text: str) -> dict[str, RateLimit | None]:
    """CLI/env form: `support=600/60,accounting=off` (`off` removes a system's limit)."""
    limits: dict[str, RateLimit | None] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        system, sep, value = item.partition("=")
        if not sep or system not in SYSTEMS:
            raise ValueError(
                f"bad rate-limit setting {item!r}; "
                "use <system>=<requests>/<seconds> or <system>=off"
            )
        default = DEFAULT_RATE_LIMITS[system]
        limits[system] = (
            None if value.strip() == "off" else RateLimit.parse(value, default.retry_after)
        )
    return limits


class RateLimiter:
    """Counts accepted requests in a sliding window; refused requests are not counted."""

    def __init__(self, limit: RateLimit):
        self.limit = limit
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        """None if the request may proceed, else the seconds until it would be admitted."""
        now = time.monotonic()
        with self._lock:
            horizon = now - self.limit.per_seconds
            while self._accepted and self._accepted[0] <= horizon:
                self._accepted.popleft()
            if len(self._accepted) < self.limit.requests:
                self._accepted.append(now)
                return None
            return self._accepted[0] - horizon

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
