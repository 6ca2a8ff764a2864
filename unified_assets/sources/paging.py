"""Extracting a closed window of last-update time, page by page, without losing records at the edges.

QuickBooks Online and Coupa page by offset. A plain offset walk over "updated in [start, end)" skips a record
whenever an earlier record leaves the window mid-walk (it was updated again, so its timestamp moved to
now), because everything behind it shifts one place forward. We therefore walk by *keyset*: each request
asks for records updated at or after the newest timestamp seen so far, and uses the offset only to step
over the records already read that share exactly that timestamp (a batch job can touch thousands of records
in one second, more than a page). A few of those are re-read on purpose (`TIE_OVERLAP`) so that records
leaving the tie group between two requests cannot shift an unread record out of reach. Re-reads and records
updated during the walk are duplicates by (id, updated_at): the lake writer keeps one copy, and staging
keeps the latest version of each record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from unified_assets.sources.http import SourceError

TIE_OVERLAP = 3


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of last-update time, in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty window: end {self.end} is not after start {self.start}")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)})"


@dataclass
class Page:
    """One response's records that fall in the window, with what it cost to get them."""

    number: int
    records: list[dict[str, Any]]
    received: int
    retries: int
    elapsed_s: float


class SourceClient(Protocol):
    """What the raw assets need from a vendor client."""

    def extract(self, window: Window) -> Iterator[Page]: ...

    def close(self) -> None: ...


@dataclass
class ExtractionStats:
    pages: int = 0
    records: int = 0
    retries: int = 0
    newest_update: datetime | None = None

    def add(self, page: Page, updated_at: Callable[[dict[str, Any]], datetime]) -> None:
        self.pages += 1
        self.records += len(page.records)
        self.retries += page.retries
        for record in page.records:
            moment = updated_at(record)
            if self.newest_update is None or moment > self.newest_update:
                self.newest_update = moment


def record_timestamp(
    record: dict[str, Any], path: tuple[str, ...], system: str, id_field: str
) -> datetime:
    """The record's update time at `path`; a record without a usable one is a malformed response."""
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        record_id = record.get(id_field) if isinstance(record, dict) else None
        raise SourceError(
            f"{system}: record {id_field}={record_id!r} has no usable {'.'.join(path)} "
            f"(got {value!r}); expected an ISO-8601 timestamp with a UTC offset"
        )
    return moment


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeysetCursor:
    """Where the next request starts: records updated at or after `since`, skipping `skip` of them."""

    since: datetime
    skip: int = 0

    def advance(self, timestamps: list[datetime], limit: int) -> None:
        """Move past a page whose records are ordered by update time (ties in a stable order).

        Only the last `limit` records count: a server that returns more than it was asked for has
        re-served records from before the requested offset, and counting those would skip unread ones.
        """
        timestamps = timestamps[-limit:]
        if not timestamps:
            return
        newest = timestamps[-1]
        read_at_newest = sum(1 for moment in timestamps if moment == newest)
        if newest == self.since:
            self.skip += len(timestamps)
        else:
            self.since = newest
            self.skip = read_at_newest
        self.skip = max(0, self.skip - TIE_OVERLAP)


FetchPage = Callable[[KeysetCursor, int], tuple[list[dict[str, Any]], int, float]]


def walk_keyset(
    window: Window,
    page_size: int,
    fetch: FetchPage,
    updated_at: Callable[[dict[str, Any]], datetime],
) -> Iterator[Page]:
    """Yield pages of records updated in `window`, ordered by update time, until the window is exhausted.

    `fetch(cursor, page_size)` returns (records, retries, elapsed seconds) for one request.
    """
    cursor = KeysetCursor(since=window.start)
    number = 0
    while True:
        number += 1
        records, retries, elapsed = fetch(cursor, page_size)
        timestamps = [updated_at(record) for record in records]
        in_window = [r for r, t in zip(records, timestamps, strict=True) if window.contains(t)]
        yield Page(number, in_window, len(records), retries, elapsed)
        if len(records) < page_size:
            return
        before = (cursor.since, cursor.skip)
        cursor.advance(timestamps, page_size)
        if (cursor.since, cursor.skip) <= before:
            raise RuntimeError(
                f"pagination made no progress at {iso_utc(cursor.since)} (offset {cursor.skip}); "
                f"the page size {page_size} must exceed the tie overlap {TIE_OVERLAP}"
            )
