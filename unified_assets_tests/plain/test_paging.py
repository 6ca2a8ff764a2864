"""Keyset pagination loses nothing at window edges, in big tie groups, or while records move."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from unified_assets.sources.http import SourceError
from unified_assets.sources.paging import (
    TIE_OVERLAP,
    KeysetCursor,
    Page,
    ReadAheadClient,
    SlicedClient,
    Window,
    record_timestamp,
    walk_keyset,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(days=1))


class MovingSource:
    """An offset-paged API over records ordered by (updated_at, id), where records can be updated
    (moved to "now", after the window) between requests, as a real source is while we page it."""

    def __init__(self, timestamps: dict[int, datetime], reserve: int = 0):
        self.updated = dict(timestamps)
        self.requests = 0
        self.reserve = reserve  # widen every other page backwards by this many records

    def fetch(self, cursor: KeysetCursor, limit: int):
        self.requests += 1
        matching = sorted(
            (moment, record_id)
            for record_id, moment in self.updated.items()
            if cursor.since <= moment < WINDOW.end
        )
        widen = self.reserve if self.requests % 2 == 0 else 0
        start = max(0, cursor.skip - widen)
        page = matching[start : cursor.skip + limit]
        return [{"id": rid, "at": moment.isoformat()} for moment, rid in page], 0, 0.0

    def in_window(self) -> set[int]:
        return {rid for rid, moment in self.updated.items() if WINDOW.contains(moment)}


def updated_at(record: dict) -> datetime:
    return datetime.fromisoformat(record["at"])


def walk(source: MovingSource, page_size: int, on_page=None) -> set[int]:
    seen: set[int] = set()
    for page in walk_keyset(WINDOW, page_size, source.fetch, updated_at):
        seen.update(record["id"] for record in page.records)
        if on_page:
            on_page(page)
    return seen


def test_reads_every_record_once_per_version_when_nothing_moves():
    rng = random.Random(1)
    source = MovingSource({i: T0 + timedelta(seconds=rng.randrange(86_400)) for i in range(537)})
    assert walk(source, page_size=50) == source.in_window()


def test_a_tie_group_larger_than_several_pages_is_read_completely():
    batch_job = T0 + timedelta(hours=2)
    records = {i: batch_job for i in range(260)}
    records.update({1000 + i: T0 + timedelta(minutes=i) for i in range(40)})
    source = MovingSource(records)
    assert walk(source, page_size=50) == source.in_window()


def test_pages_that_re_serve_many_records_inside_a_tie_group_lose_nothing():
    """A server that repeats more records than the deliberate overlap must not push the offset on."""
    batch_job = T0 + timedelta(hours=2)
    source = MovingSource({i: batch_job for i in range(300)}, reserve=TIE_OVERLAP + 7)
    assert walk(source, page_size=50) == source.in_window()


def test_records_leaving_the_window_mid_walk_do_not_hide_others():
    """The failure of plain offset paging: every earlier record that leaves shifts the rest forward."""
    rng = random.Random(7)
    batch_job = T0 + timedelta(hours=5)
    records = {i: T0 + timedelta(seconds=rng.randrange(86_400)) for i in range(400)}
    records.update({500 + i: batch_job for i in range(120)})
    source = MovingSource(records)
    expected_survivors = set(records)
    departed: set[int] = set()

    def update_two_already_read(page):
        for record in page.records[:2]:
            source.updated[record["id"]] = WINDOW.end + timedelta(hours=1)
            departed.add(record["id"])

    seen = walk(source, page_size=50, on_page=update_two_already_read)
    assert departed, "the scenario must move records"
    assert seen >= expected_survivors - departed
    assert seen == expected_survivors


def test_empty_window_takes_one_request():
    source = MovingSource({})
    assert walk(source, page_size=50) == set()
    assert source.requests == 1


def test_a_record_without_a_usable_timestamp_names_the_field_and_record():
    with pytest.raises(
        SourceError, match=r"accounting: record Id='42' has no usable MetaData\.Last"
    ):
        record_timestamp(
            {"Id": "42", "MetaData": {}}, ("MetaData", "LastUpdated"), "accounting", "Id"
        )
    with pytest.raises(SourceError, match="UTC offset"):
        record_timestamp({"id": 1, "t": "2026-03-01T10:00:00"}, ("t",), "support", "id")


def test_window_rejects_naive_and_empty_bounds():
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(datetime(2026, 3, 1), datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="empty window"):
        Window(T0, T0)


# --- windows read in slices --------------------------------------------------------------------------


class RecordsByTime:
    """A client over fixed records that pages any window (keyset walk), counting what it was asked."""

    def __init__(self, timestamps: dict[int, datetime], fail_in: Window | None = None):
        self.timestamps = timestamps
        self.fail_in = fail_in
        self.windows: list[Window] = []
        self.closed = False

    def extract(self, window: Window):
        self.windows.append(window)
        if window == self.fail_in:
            raise SourceError("purchasing (Coupa): HTTP 500 on page 1")

        def fetch(cursor, limit):
            matching = sorted(
                (moment, rid)
                for rid, moment in self.timestamps.items()
                if cursor.since <= moment < window.end
            )
            page = matching[cursor.skip : cursor.skip + limit]
            return [{"id": rid, "at": moment.isoformat()} for moment, rid in page], 0, 0.0

        yield from walk_keyset(window, 7, fetch, updated_at)

    def close(self):
        self.closed = True


MONTH = Window(T0, T0 + timedelta(days=31))
SCATTERED = {n: T0 + timedelta(minutes=37 * n) for n in range(1000)}  # some beyond the month


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7])
def test_a_window_splits_into_adjacent_parts_that_cover_it(parts):
    pieces = MONTH.split(parts)
    assert len(pieces) == parts
    assert pieces[0].start == MONTH.start and pieces[-1].end == MONTH.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))


def test_a_window_shorter_than_its_parts_in_seconds_is_not_cut_finer():
    short = Window(T0, T0 + timedelta(seconds=2))
    assert [(w.start, w.end) for w in short.split(4)] == [
        (T0, T0 + timedelta(seconds=1)),
        (T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)),
    ]


def test_a_past_window_read_in_slices_yields_every_record_once_per_version():
    clients: list[RecordsByTime] = []

    def open_client(_n):
        clients.append(RecordsByTime(SCATTERED))
        return clients[-1]

    sliced = SlicedClient(open_client, 4, now=lambda: MONTH.end + timedelta(days=1))
    pages = list(sliced.extract(MONTH))
    sliced.close()

    read = {record["id"] for page in pages for record in page.records}
    assert read == {rid for rid, moment in SCATTERED.items() if MONTH.contains(moment)}
    assert [page.number for page in pages] == list(range(1, len(pages) + 1))
    assert [client.windows for client in clients] == [[piece] for piece in MONTH.split(4)]
    assert all(client.closed for client in clients)


def test_a_window_reaching_the_present_is_read_in_one_walk():
    clients: list[RecordsByTime] = []
    sliced = SlicedClient(
        lambda _n: clients.append(RecordsByTime(SCATTERED)) or clients[-1],
        4,
        now=lambda: MONTH.end - timedelta(hours=1),
    )
    list(sliced.extract(MONTH))
    assert [client.windows for client in clients] == [[MONTH]]


def test_a_slice_that_fails_fails_the_read_and_stops_the_others():
    failing = MONTH.split(4)[2]
    clients: list[RecordsByTime] = []
    sliced = SlicedClient(
        lambda _n: clients.append(RecordsByTime(SCATTERED, fail_in=failing)) or clients[-1],
        4,
        now=lambda: MONTH.end + timedelta(days=1),
    )
    with pytest.raises(SourceError, match="HTTP 500 on page 1"):
        list(sliced.extract(MONTH))
    sliced.close()
    assert not any(thread.name.startswith("extract-") for thread in threading.enumerate())


# --- one walk, read ahead -----------------------------------------------------------------------------


class Gated:
    """A client whose walk says when it starts each page's request, so a test can see what overlaps."""

    def __init__(self, pages: int, fail_on: int | None = None):
        self.pages = pages
        self.fail_on = fail_on
        self.requested = [threading.Event() for _ in range(pages + 2)]
        self.closed = False

    def extract(self, window: Window):
        for number in range(1, self.pages + 1):
            self.requested[number].set()
            if number == self.fail_on:
                raise SourceError(f"accounting (QuickBooks): HTTP 500 on page {number}")
            yield Page(number, [{"id": number}], 1, 0, 0.0)

    def close(self):
        self.closed = True


def test_one_walk_requests_the_next_page_while_the_caller_works_on_this_one():
    client = Gated(pages=3)
    reader = ReadAheadClient(client)
    numbers = []
    for page in reader.extract(WINDOW):
        numbers.append(page.number)
        if page.number < 3:  # the caller still holds this page: the next is being fetched already
            assert client.requested[page.number + 1].wait(timeout=30), "no read-ahead"
    reader.close()
    assert numbers == [1, 2, 3]
    assert client.closed


def test_a_walk_read_ahead_fails_with_its_own_error_after_the_pages_before_it():
    reader = ReadAheadClient(Gated(pages=5, fail_on=3))
    numbers = []
    with pytest.raises(SourceError, match="HTTP 500 on page 3"):
        numbers.extend(page.number for page in reader.extract(WINDOW))
    assert numbers == [1, 2]
    assert not any(thread.name.startswith("extract-") for thread in threading.enumerate())
