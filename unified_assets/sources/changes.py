"""Which days of a source changed in a window: the cheap question a sensor asks before any extraction.

Raw extracts are partitioned by the UTC day of each record's last update, so "what must be re-extracted"
is "on which days of the window did the source update something". Each day costs one request for one
record (a client opened as a probe reads one record per page), whatever the volume: the question stays
cheap on a busy source and on the vendors' strictest rate limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta

from unified_assets.sources.paging import SourceClient, Window

# How far behind the present a watcher reads a source: Zendesk's incremental export hides the last minute,
# and a record committed late must not fall behind a cursor that has already moved past its timestamp.
SETTLE = timedelta(minutes=2)


def day_slices(window: Window) -> Iterator[Window]:
    """`window` cut at UTC midnights, so that each slice lies in one raw partition."""
    start = window.start
    while start < window.end:
        midnight = datetime.combine(start.astimezone(UTC).date() + timedelta(days=1), time(), UTC)
        end = min(midnight, window.end)
        yield Window(start, end)
        start = end


def days_with_changes(client: SourceClient, window: Window) -> list[date]:
    """The UTC days on which the source holds a record last updated inside `window`.

    A record updated in the window and again after it counts on the later day only: that is where its
    current version lives, and where the next extraction of that day will find it.
    """
    return [part.start.date() for part in day_slices(window) if _has_records(client, part)]


def _has_records(client: SourceClient, window: Window) -> bool:
    with closing(client.extract(window)) as pages:  # type: ignore[arg-type]
        first = next(pages, None)
    return first is not None and bool(first.records)
