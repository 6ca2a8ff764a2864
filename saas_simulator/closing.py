"""The accounting system's month-end close: when the books of each month are locked.

Finance closes a month on the third calendar day of the next month, at 16:00 company time; from then on
QuickBooks' `Preferences.AccountingInfoPrefs.BookCloseDate` is that month's last day and the preferences'
`MetaData.LastUpdatedTime` is the moment of the close. Like everything else in the world it is a function
of the time alone, so every process agrees on which months are closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from saas_simulator.timeutil import (
    COMPANY_ZONE,
    DAY_S,
    EPOCH_ORDINAL,
    HOUR_S,
    zone_offset_s,
)

CLOSE_DAY = 3
CLOSE_HOUR = 16


@dataclass(frozen=True)
class BookClose:
    """The books of `period` (its first day) were closed at `closed_at` (Unix seconds)."""

    period: date
    closed_at: int

    @property
    def book_close_date(self) -> date:
        """The last day of the closed month, as QuickBooks reports it."""
        return _next_month(self.period) - timedelta(days=1)


def close_of(period: date) -> BookClose:
    """When the month starting `period` is closed."""
    close_day = _next_month(period).replace(day=CLOSE_DAY).toordinal()
    local_midnight = (close_day - EPOCH_ORDINAL) * DAY_S - zone_offset_s(COMPANY_ZONE, close_day)
    return BookClose(period, local_midnight + CLOSE_HOUR * HOUR_S)


def closes_between(history_start: date, after: float, until: float) -> list[BookClose]:
    """Every month of history whose close happened in (after, until], oldest first."""
    found = []
    period = history_start.replace(day=1)
    while True:
        close = close_of(period)
        if close.closed_at > until:
            return found
        if close.closed_at > after:
            found.append(close)
        period = _next_month(period)


def latest_close(history_start: date, now: float) -> tuple[BookClose | None, int]:
    """The most recent close at `now` and how many closes there have been (the preferences' SyncToken)."""
    closes = closes_between(history_start, float("-inf"), now)
    return (closes[-1] if closes else None), len(closes)


def _next_month(period: date) -> date:
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)
