"""Keyset pagination loses nothing at window edges, in big tie groups, or while records move."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from unified_assets.sources.http import SourceError
from unified_assets.sources.paging import (
    TIE_OVERLAP,
    KeysetCursor,
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
