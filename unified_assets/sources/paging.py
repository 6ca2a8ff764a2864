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

import contextlib
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, Self

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

    def split(self, parts: int) -> list[Window]:
        """Up to `parts` adjacent windows that cover this one, cut on whole seconds."""
        seconds = int((self.end - self.start).total_seconds())
        cuts = sorted({self.start + timedelta(seconds=seconds * n // parts) for n in range(parts)})
        return [Window(a, b) for a, b in zip(cuts, [*cuts[1:], self.end], strict=True)]

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
    """What the raw assets need from a vendor client. Used as a context manager, which closes it."""

    def extract(self, window: Window) -> Iterator[Page]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class ClosedOnExit:
    """`with client:` closes the client's connections however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class ExtractionStats:
    pages: int = 0
    records: int = 0
    retries: int = 0
    newest_update: datetime | None = None
    # Records received per UTC day of last update: what each day's partition was built from.
    records_by_day: Counter[date] = field(default_factory=Counter)

    def add(self, page: Page, updated_at: Callable[[dict[str, Any]], datetime]) -> None:
        self.pages += 1
        self.records += len(page.records)
        self.retries += page.retries
        for record in page.records:
            moment = updated_at(record)
            self.records_by_day[moment.astimezone(UTC).date()] += 1
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


def check_record_ids(
    records: list[Any], id_field: str, system: str, request: str, digits_as_text: bool = False
) -> None:
    """Every record of a page must carry its id as the vendor documents it: an integer, or for
    QuickBooks a string of digits. The id is how a record's versions are told apart and kept once, so
    a record without a usable one makes the page malformed: the extraction stops, naming the record,
    the field and the request, rather than land a row no later version can replace."""
    for position, record in enumerate(records, start=1):
        value = record.get(id_field) if isinstance(record, dict) else None
        if value is None:
            raise SourceError(
                f"{system}: record {position} of the page has no {id_field!r} field ({request})"
            )
        if not _is_id(value, digits_as_text):
            expected = "a string of digits" if digits_as_text else "an integer"
            raise SourceError(
                f"{system}: record {position} of the page has {id_field}={str(value)[:40]!r} "
                f"({type(value).__name__}), expected {expected} ({request})"
            )


def _is_id(value: Any, digits_as_text: bool) -> bool:
    if digits_as_text:
        return isinstance(value, str) and value.isascii() and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool)


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


_DONE = object()


def extract_concurrently(
    clients: Sequence[SourceClient], windows: Sequence[Window]
) -> Iterator[Page]:
    """The pages of several windows, each walked by its own client in its own thread, in the order they
    arrive (renumbered). A vendor whose pages are small (Coupa: 50 records) spends its time waiting on
    the network, one request after another; windows read at once overlap that wait. The first error
    stops the other walks at their next page and is raised here. At most two pages per window wait in
    memory."""
    pages: queue.Queue = queue.Queue(maxsize=2 * len(windows))
    stop = threading.Event()

    def walk(client: SourceClient, window: Window) -> None:
        try:
            for page in client.extract(window):
                if stop.is_set():
                    return
                pages.put(page)
        except BaseException as error:  # handed to the consumer, which raises it
            pages.put(error)
        finally:
            pages.put(_DONE)

    threads = [
        threading.Thread(target=walk, args=pair, daemon=True, name=f"extract-{n}")
        for n, pair in enumerate(zip(clients, windows, strict=True))
    ]
    for thread in threads:
        thread.start()
    running, number = len(threads), 0
    try:
        while running:
            item = pages.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                number += 1
                yield Page(number, item.records, item.received, item.retries, item.elapsed_s)
    finally:
        stop.set()
        while any(thread.is_alive() for thread in threads):  # let blocked walkers finish their put
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.1)


class ReadAheadClient(ClosedOnExit):
    """A `SourceClient` whose walk runs in a thread of its own, one page or two ahead of the caller:
    the next request waits on the network while the caller redacts and stages the page before, which
    one walk in one thread would do one after the other. Pages come in the walk's order."""

    def __init__(self, client: SourceClient):
        self._client = client

    def extract(self, window: Window) -> Iterator[Page]:
        return extract_concurrently([self._client], [window])

    def close(self) -> None:
        self._client.close()


class SlicedClient(ClosedOnExit):
    """A `SourceClient` that reads a window of the past as `slices` windows at once, each with a client
    of its own from `open_client`. A window that reaches the system's present (`now`) is read as one, in
    order: a record updated during the run moves to the newest timestamps, which one walk reaches last,
    but which a slice that had already finished would miss. (A record moving out of a past window lands
    in a later partition, as it does without slices.) Either way the walks run in threads, ahead of
    the caller."""

    def __init__(
        self, open_client: Callable[[int], SourceClient], slices: int, now: Callable[[], datetime]
    ):
        self._open_client = open_client
        self._slices = slices
        self._now = now
        self._clients: list[SourceClient] = []

    def extract(self, window: Window) -> Iterator[Page]:
        parts = window.split(self._slices) if window.end <= self._now() else [window]
        while len(self._clients) < len(parts):
            self._clients.append(self._open_client(len(self._clients)))
        yield from extract_concurrently(self._clients[: len(parts)], parts)

    def close(self) -> None:
        for client in self._clients:
            client.close()
