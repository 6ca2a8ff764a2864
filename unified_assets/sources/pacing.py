"""A vendor's request limit kept on our side, shared by every connection that reads one window at once.

Vendors state their limits as "at most N requests in any W seconds" (Coupa: 25 a second; QuickBooks: 500 a
minute per company) and answer 429 past them. One walk rarely meets its vendor's limit, and backs off when
it does; four slices of a window read at once meet it every second and spend the run in 429s and backoff
(the test suite's quick retries gave up on them). So the slices of one read share a `RequestPacer`: before
each request a slice waits for the next free moment to send it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestPacer:
    """Requests spaced `per_seconds / max_requests` apart, across the threads that share it: so at most
    `max_requests` are sent in any `per_seconds`. Even spacing rather than bursts up to the limit: the
    vendor counts requests as they arrive, and a burst sent at a window's end can arrive together with
    the next window's first."""

    def __init__(
        self,
        max_requests: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_requests < 1 or not per_seconds > 0:
            raise ValueError(
                f"a request limit needs max_requests >= 1 and per_seconds > 0, "
                f"got {max_requests} per {per_seconds} s"
            )
        self.interval_s = per_seconds / max_requests
        self._clock = clock
        self._sleep = sleep
        self._next_free: float | None = None
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def wait_turn(self) -> float:
        """Take the next free moment to send a request, wait for it, and return it (on the pacer's
        clock). `waited_s` adds up the time the callers spent waiting."""
        with self._lock:
            now = self._clock()
            moment = now if self._next_free is None else max(now, self._next_free)
            self._next_free = moment + self.interval_s
            self.waited_s += moment - now
        if moment > now:
            self._sleep(moment - now)
        return moment
