"""The simulator's notion of "now": real, frozen (and movable by tests), or accelerated.

Every process built from the same clock setting agrees on the time, because an accelerated clock is
a pure function of the real time: sim_now = anchor + speed * (real_now - anchor).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from saas_simulator.timeutil import parse_moment, to_utc_datetime

_FORMS = '"real", "frozen:<ISO time>" or "accelerated:<speed>@<ISO anchor>"'


class SimClock:
    """A source of the current simulated time as an aware UTC datetime."""

    def __init__(self, mode: str, *, at: float = 0.0, speed: float = 1.0, anchor: float = 0.0):
        if mode not in ("real", "frozen", "accelerated"):
            raise ValueError(f"unknown clock mode {mode!r}; use one of {_FORMS}")
        if mode == "accelerated" and not speed > 0:
            raise ValueError(f"clock speed must be positive, got {speed!r}")
        self.mode = mode
        self._at = at
        self.speed = speed
        self.anchor = anchor
        self._lock = threading.Lock()

    @classmethod
    def real(cls) -> SimClock:
        return cls("real")

    @classmethod
    def frozen(cls, at: datetime | str) -> SimClock:
        """A clock that stands still until a test moves it with `set` or `advance`."""
        return cls("frozen", at=to_utc_datetime(at).timestamp())

    @classmethod
    def accelerated(cls, speed: float, anchor: datetime | str) -> SimClock:
        """Time runs `speed` times faster than real time, pivoting on `anchor`."""
        return cls("accelerated", speed=float(speed), anchor=to_utc_datetime(anchor).timestamp())

    @classmethod
    def parse(cls, text: str) -> SimClock:
        """Read the CLI/environment form: real | frozen:<iso> | accelerated:<speed>@<iso>."""
        raw = text.strip()
        mode, _, argument = raw.partition(":")
        mode = mode.lower()
        try:
            if mode == "real" and not argument:
                return cls.real()
            if mode == "frozen" and argument:
                return cls.frozen(datetime.fromtimestamp(parse_moment(argument), UTC))
            if mode == "accelerated" and "@" in argument:
                speed, _, anchor = argument.partition("@")
                return cls.accelerated(
                    float(speed), datetime.fromtimestamp(parse_moment(anchor), UTC)
                )
        except ValueError as error:
            raise ValueError(f"bad clock setting {text!r}: {error}") from None
        raise ValueError(f"bad clock setting {text!r}; use {_FORMS}")

    def timestamp(self) -> float:
        """The simulated now as Unix seconds."""
        if self.mode == "frozen":
            with self._lock:
                return self._at
        real_now = time.time()
        if self.mode == "real":
            return real_now
        return self.anchor + self.speed * (real_now - self.anchor)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def set(self, at: datetime | str) -> None:
        """Move a frozen clock to `at` (tests use this to let the world move on)."""
        self._require_frozen()
        with self._lock:
            self._at = to_utc_datetime(at).timestamp()

    def advance(self, by: timedelta | float) -> None:
        """Move a frozen clock forward by a timedelta or a number of seconds."""
        self._require_frozen()
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        with self._lock:
            self._at += seconds

    def _require_frozen(self) -> None:
        if self.mode != "frozen":
            raise ValueError(f"only a frozen clock can be moved; this one is {self}")

    def __str__(self) -> str:
        if self.mode == "real":
            return "real"
        if self.mode == "frozen":
            return f"frozen:{_iso(self.timestamp())}"
        return f"accelerated:{self.speed:g}@{_iso(self.anchor)}"

    def __repr__(self) -> str:
        return f"SimClock.parse({str(self)!r})"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
