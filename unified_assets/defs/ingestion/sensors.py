"""The sensor that re-extracts exactly the raw partitions a source changed, minutes after it changed.

Each tick asks every source, one cheap request per day (`sources/changes.py`), whether it updated anything
between that source's cursor and a moment a little in the past (`SETTLE`: Zendesk's export hides the last
minute, and a record committed late must not fall behind the cursor). The changed days of a source become
a run of those partitions (sources that changed on the same days share one run); the run key names the
sources, the days and the end of the window, so a tick that is evaluated twice never starts a run twice.
The cursor moves in the same `SensorResult` as the run requests, source by source: a source that did not
answer keeps its cursor and is asked again next tick, and no extraction is started against it.

What the sensor does not do: catch up on a long outage. It looks back at most `CATCH_UP`; older days are
the daily pipeline's (every day is extracted once after it ends) and a backfill's.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from unified_assets import settings
from unified_assets.defs.ingestion.assets import RAW_SOURCES, RawSource
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SourceApi, SupportApi
from unified_assets.settings import SettingError
from unified_assets.sources.changes import SETTLE, days_with_changes
from unified_assets.sources.http import SourceError
from unified_assets.sources.paging import Window, iso_utc

CATCH_UP = timedelta(days=2)
FIRST_LOOK = timedelta(hours=24)
TRIGGER_TAG = "unified_assets/trigger"
WINDOW_END_TAG = "unified_assets/changes_until"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@dataclass
class Poll:
    """What one tick learned, source by source."""

    changed_days: dict[RawSource, tuple[date, ...]] = field(default_factory=dict)
    asked_until: dict[RawSource, datetime] = field(default_factory=dict)
    cursor: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.changed:
            parts.append("changed: " + "; ".join(self.changed))
        if self.unchanged:
            parts.append("no change: " + "; ".join(self.unchanged))
        if self.unreachable:
            parts.append(
                "not reachable or not configured, asked again next tick: "
                + "; ".join(self.unreachable)
            )
        return ". ".join(parts)


def read_cursor(text: str | None, context: SensorEvaluationContext) -> dict[str, datetime]:
    """The cursor's per-source positions; an unreadable cursor (set by hand in the UI) is reported and
    treated as none, which costs at most a re-extraction of the recent days."""
    if not text:
        return {}
    try:
        return {table: datetime.fromisoformat(moment) for table, moment in json.loads(text).items()}
    except (ValueError, AttributeError, TypeError):
        context.log.warning(f"ignoring an unreadable cursor {text[:80]!r}; looking at the last day")
        return {}


def window_to_ask(since: datetime | None, now: datetime) -> Window | None:
    """From the cursor (on a first tick, from `FIRST_LOOK` ago: a fresh `dagster dev` brings in the
    last day's changes at once) to `now - SETTLE`, never further back than `CATCH_UP` nor before the
    first day of history."""
    until = now - SETTLE
    start = since or until - FIRST_LOOK
    start = max(start, until - CATCH_UP, datetime.combine(settings.history_start(), time(), UTC))
    return Window(start, until) if start < until else None


def run_requests(
    changed_days: dict[RawSource, tuple[date, ...]], asked_until: dict[RawSource, datetime]
) -> list[RunRequest]:
    """One run per set of sources that changed on the same days, over those days: usually one run for
    all three (one process pool, not one per source and day), never a day or a source that did not
    change. Days are consecutive runs of partitions, so a gap splits the range."""
    by_days: dict[tuple[date, ...], list[RawSource]] = {}
    for source, days in changed_days.items():
        by_days.setdefault(days, []).append(source)
    requests = []
    for days, sources in by_days.items():
        until = iso_utc(max(asked_until[source] for source in sources))
        for first, last in consecutive_ranges(days):
            tables = "+".join(source.table for source in sources)
            tags = {TRIGGER_TAG: "new data", WINDOW_END_TAG: until}
            if first == last:
                partition = {"partition_key": first.isoformat()}
            else:
                partition = {}
                tags[RANGE_START] = first.isoformat()
                tags[RANGE_END] = last.isoformat()
            requests.append(
                RunRequest(
                    run_key=f"{tables}:{first}..{last}:{until}",
                    asset_selection=[source.key for source in sources],
                    tags=tags,
                    **partition,
                )
            )
    return requests


def consecutive_ranges(days: tuple[date, ...]) -> list[tuple[date, date]]:
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def poll_source(
    source: RawSource,
    api: SourceApi,
    since: datetime | None,
    now: datetime,
    poll: Poll,
    log: logging.Logger,
) -> None:
    window = window_to_ask(since, now)
    if window is None:
        poll.unchanged.append(f"{source.table} (asked less than {SETTLE} ago)")
        if since is not None:
            poll.cursor[source.table] = since.isoformat()
        return
    try:
        with api.open_probe(log) as client:
            days = days_with_changes(client, window)
    except (SourceError, SettingError) as error:
        poll.unreachable.append(f"{source.table}: {error}")
        if since is not None:
            poll.cursor[source.table] = since.isoformat()
        return
    poll.cursor[source.table] = window.end.isoformat()
    if not days:
        poll.unchanged.append(f"{source.table} in {window}")
        return
    poll.changed_days[source] = tuple(days)
    poll.asked_until[source] = window.end
    poll.changed.append(f"{source.table} on {', '.join(map(str, days))} in {window}")


def build_new_data_sensor(now: Callable[[], datetime] | None = None) -> SensorDefinition:
    """The sensor; windows end at each system's own now (`SourceApi.now`) unless a clock is given."""

    @sensor(
        name="new_source_data",
        target=AssetSelection.assets(*(source.key for source in RAW_SOURCES)),
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Asks each source system, one cheap request per day, whether it changed anything since "
            "the last tick, and extracts exactly the raw partitions (days) that changed. A system that "
            "does not answer is skipped with its error and asked again next tick."
        ),
    )
    def new_source_data(
        context: SensorEvaluationContext,
        accounting_api: AccountingApi,
        purchasing_api: PurchasingApi,
        support_api: SupportApi,
    ) -> SensorResult:
        apis = {
            "accounting_api": accounting_api,
            "purchasing_api": purchasing_api,
            "support_api": support_api,
        }
        positions = read_cursor(context.cursor, context)
        poll = Poll()
        for source in RAW_SOURCES:
            api = apis[source.resource_key]
            moment = now() if now else api.now()
            poll_source(source, api, positions.get(source.table), moment, poll, context.log)
        cursor = json.dumps(poll.cursor, sort_keys=True)
        if not poll.changed_days:
            return SensorResult(skip_reason=poll.summary(), cursor=cursor)
        context.log.info(poll.summary())
        requests = run_requests(poll.changed_days, poll.asked_until)
        return SensorResult(run_requests=requests, cursor=cursor)

    return new_source_data


new_source_data = build_new_data_sensor()
