"""Time helpers shared by the world and the wire formats: epoch seconds in, vendor strings out.

The world stores every moment as integer Unix seconds (the vendors' timestamps have second
precision). QuickBooks shows them in the company's time zone (America/Los_Angeles); Coupa and
Zendesk in UTC with `Z`. The US and EU daylight-saving rules are computed here rather than read from
the system's tz database, so the world is identical on every machine.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np

DAY_S = 86_400
HOUR_S = 3_600
NEVER = 2**62  # "no such event": larger than any real timestamp, still an int64


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=n - 1)


def _last_sunday(year: int, month: int) -> date:
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


@lru_cache(maxsize=256)
def us_dst_bounds(year: int) -> tuple[int, int]:
    """UTC seconds when US Pacific daylight time starts and ends (2:00 local) in `year`."""
    start = _nth_sunday(year, 3, 2)
    end = _nth_sunday(year, 11, 1)
    return (
        int(datetime(start.year, start.month, start.day, 10, tzinfo=UTC).timestamp()),
        int(datetime(end.year, end.month, end.day, 9, tzinfo=UTC).timestamp()),
    )


@lru_cache(maxsize=4096)
def _us_dst_on(day_ordinal: int) -> bool:
    day = date.fromordinal(day_ordinal)
    return _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)


@lru_cache(maxsize=4096)
def _eu_dst_on(day_ordinal: int) -> bool:
    day = date.fromordinal(day_ordinal)
    return _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10)


def la_offset_s(ts: int) -> int:
    """America/Los_Angeles UTC offset in seconds at Unix time `ts`."""
    start, end = us_dst_bounds(time.gmtime(ts).tm_year)
    return -7 * HOUR_S if start <= ts < end else -8 * HOUR_S


def la_offsets(moments: np.ndarray) -> np.ndarray:
    """Vectorised `la_offset_s` for an int64 array of Unix seconds."""
    if len(moments) == 0:
        return np.zeros(0, dtype=np.int64)
    years = moments.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    unique, inverse = np.unique(years, return_inverse=True)
    bounds = np.array([us_dst_bounds(int(y)) for y in unique], dtype=np.int64)[inverse]
    summer = (bounds[:, 0] <= moments) & (moments < bounds[:, 1])
    return np.where(summer, -7 * HOUR_S, -8 * HOUR_S).astype(np.int64)


def zone_offset_s(zone: str, day_ordinal: int) -> int:
    """UTC offset (seconds) around midday of a local date, for the few zones the world uses."""
    base, rule = ZONES[zone]
    dst = _us_dst_on(day_ordinal) if rule == "us" else _eu_dst_on(day_ordinal)
    return (base + (1 if dst else 0)) * HOUR_S


# zone -> (standard offset in hours, daylight-saving rule)
ZONES: dict[str, tuple[int, str]] = {
    "America/Los_Angeles": (-8, "us"),
    "America/Chicago": (-6, "us"),
    "America/New_York": (-5, "us"),
    "America/Toronto": (-5, "us"),
    "Europe/London": (0, "eu"),
    "Europe/Berlin": (1, "eu"),
    "Europe/Amsterdam": (1, "eu"),
    "Europe/Paris": (1, "eu"),
}

COMPANY_ZONE = "America/Los_Angeles"
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def company_day_of(ts: float) -> int:
    """The company's (Los Angeles) calendar date of a Unix time, as a date ordinal."""
    seconds = int(ts // 1)
    return (seconds + la_offset_s(seconds)) // DAY_S + EPOCH_ORDINAL


def iso_z(ts: int) -> str:
    """`2026-03-01T10:15:00Z`: Coupa and Zendesk timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_la(ts: int) -> str:
    """`2026-03-01T02:15:00-08:00`: QuickBooks timestamps in the company's zone."""
    offset = la_offset_s(ts)
    hours = -offset // HOUR_S
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts + offset)) + f"-{hours:02d}:00"


def iso_la_millis(moment: float) -> str:
    """QuickBooks' response `time`: milliseconds and the company's offset."""
    seconds = int(moment // 1)
    millis = int((moment - seconds) * 1000)
    text = iso_la(seconds)
    return f"{text[:19]}.{millis:03d}{text[19:]}"


def la_date(ts: int) -> str:
    """The company's calendar date of a Unix time, `YYYY-MM-DD` (QuickBooks TxnDate)."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts + la_offset_s(ts)))


def ordinal_iso(day_ordinal: int) -> str:
    return date.fromordinal(day_ordinal).isoformat()


def parse_moment(text: str, naive_zone: str = "UTC") -> float:
    """Unix seconds of an ISO-8601 date or date-time; a value without an offset is read in
    `naive_zone`.

    Raises ValueError with the offending text, which the vendor modules turn into their 400 bodies.
    """
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date or date-time") from None
    if parsed.tzinfo is not None:
        return parsed.timestamp()
    naive_seconds = (parsed - datetime(1970, 1, 1)).total_seconds()
    if naive_zone == "UTC":
        return naive_seconds
    return naive_seconds - zone_offset_s(naive_zone, parsed.date().toordinal())


def to_utc_datetime(moment: datetime | str | float | int) -> datetime:
    """An aware datetime, Timestamp, ISO string or Unix seconds, as aware UTC."""
    if isinstance(moment, int | float):
        return datetime.fromtimestamp(moment, UTC)
    if isinstance(moment, str):
        return datetime.fromtimestamp(parse_moment(moment), UTC)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"{moment!r} has no time zone; pass an aware datetime (e.g. UTC)")
        return moment.astimezone(UTC)
    raise TypeError(f"expected a datetime, ISO string or Unix seconds, got {type(moment).__name__}")
