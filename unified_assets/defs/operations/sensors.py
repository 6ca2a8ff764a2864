"""Sensors for business events: a priority-1 ticket, and a month's books closing.

Each event reaches us two ways, as with the real vendors: a signed webhook, verified and left in the inbox
by the receiver (`python -m unified_assets.webhooks`, started by `scripts/dev`), and the vendor's own API,
which the sensor reads as a safety net for deliveries that never came. Both lead to the same run key, so an
event seen twice starts one run. Cursors (inbox position, feed position) move in the `SensorResult` that
carries the run requests.
"""

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from unified_assets.defs.operations.assets import (
    ENRICHED_P1_TICKETS,
    MARTS,
    MONTH_END_CLOSE,
    month_bounds,
    p1_ticket_partitions,
)
from unified_assets.lib.source_apis import AccountingApi, SupportApi
from unified_assets.lib.storage import PlatformStorage
from unified_assets.settings import SettingError
from unified_assets.sources.changes import SETTLE
from unified_assets.sources.http import SourceError
from unified_assets.sources.paging import Window
from unified_assets.webhooks.events import PayloadError, preferences_changed, urgent_ticket_id
from unified_assets.webhooks.inbox import Inbox, InboxError

P1_CATCH_UP = timedelta(days=1)
PREFERENCES_POLL = timedelta(minutes=15)
EVENT_TAG = "unified_assets/business_event"
# The sensor sees an event once: a run that fails (the warehouse busy, the support system down for a
# moment) is retried by the daemon (`run_retries` in deploy/dagster.yaml), not lost.
RETRIED = {"dagster/max_retries": "2"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def read_state(context: SensorEvaluationContext) -> dict:
    if not context.cursor:
        return {}
    try:
        state = json.loads(context.cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        context.log.warning(f"ignoring an unreadable cursor {context.cursor[:80]!r}")
        return {}
    return state


def inbox_events(
    inbox: Inbox,
    source: str,
    after: str | None,
    read: Callable[[bytes], object],
    context: SensorEvaluationContext,
) -> tuple[list[object], str | None]:
    """What the verified deliveries after `after` say, and the new inbox position. A delivery whose
    body is not what the vendor documents is logged and passed over: it cannot become readable later."""
    found, position = [], after
    for item in inbox.items(source, after=after):
        try:
            found.append(read(inbox.read(item)))
        except (PayloadError, InboxError) as error:
            context.log.warning(f"webhook {source}/{item.name} passed over: {error}")
        position = item.name
    return found, position


# ------------------------------------------------------------------------------------- P1 tickets


def materialized(context: SensorEvaluationContext, key: AssetKey) -> bool:
    return context.instance.get_latest_materialization_event(key) is not None


def urgent_tickets_in_feed(
    support_api: SupportApi, window: Window, context: SensorEvaluationContext
) -> list[int]:
    with support_api.open_client(context.log, announce=False) as client:
        return [
            int(ticket["id"])
            for page in client.extract(window)
            for ticket in page.records
            if ticket.get("priority") == "urgent" and ticket.get("status") != "deleted"
        ]


def build_p1_tickets_sensor(now: Callable[[], datetime] | None = None) -> SensorDefinition:
    """The sensor; the export is read up to the support system's own now unless a clock is given."""

    @sensor(
        name="p1_tickets",
        target=AssetSelection.assets(ENRICHED_P1_TICKETS),
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Adds every ticket that becomes priority 1 (urgent) as a partition of "
            "operations/enriched_p1_tickets and enriches it at once. Hears Zendesk's webhook (via the "
            "inbox) and reads the incremental export for any delivery that never came."
        ),
    )
    def p1_tickets(
        context: SensorEvaluationContext, storage: PlatformStorage, support_api: SupportApi
    ) -> SensorResult:
        unbuilt = [key.to_user_string() for key in MARTS if not materialized(context, key)]
        if unbuilt:
            # Nothing to enrich with yet; the cursor stays, so these tickets are taken once it is built.
            return SensorResult(skip_reason=f"waiting for {', '.join(unbuilt)} to be built first")
        state = read_state(context)
        from_webhooks, inbox_position = inbox_events(
            storage.inbox(), "support", state.get("inbox"), urgent_ticket_id, context
        )
        seen = {ticket: "webhook" for ticket in from_webhooks if ticket is not None}
        cursor = {"inbox": inbox_position, "feed": state.get("feed")}
        notes = []
        until = (now() if now else support_api.now()) - SETTLE
        since = datetime.fromisoformat(state["feed"]) if state.get("feed") else until - P1_CATCH_UP
        if since < until:
            try:
                for ticket in urgent_tickets_in_feed(support_api, Window(since, until), context):
                    seen.setdefault(ticket, "export")
                cursor["feed"] = until.isoformat()
            except (SourceError, SettingError) as error:
                notes.append(f"the export was not read ({error}); asked again next tick")
        new = sorted(
            ticket
            for ticket in seen
            if not context.instance.has_dynamic_partition(p1_ticket_partitions.name, str(ticket))
        )
        cursor_text = json.dumps(cursor, sort_keys=True)
        if not new:
            known = f"{len(seen)} already enriched" if seen else "none"
            return SensorResult(
                skip_reason=" ".join([f"no new P1 ticket (seen this tick: {known}).", *notes]),
                cursor=cursor_text,
            )
        context.log.info(f"new P1 tickets: {', '.join(f'{t} (via {seen[t]})' for t in new)}")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"p1:{ticket}",
                    partition_key=str(ticket),
                    tags={EVENT_TAG: f"P1 ticket via {seen[ticket]}", **RETRIED},
                )
                for ticket in new
            ],
            dynamic_partitions_requests=[
                p1_ticket_partitions.build_add_request([str(t) for t in new])
            ],
            cursor=cursor_text,
        )

    return p1_tickets


# ---------------------------------------------------------------------------------- month-end close


def months_closed_between(after: date, through: date) -> list[str]:
    """Partition keys (first days) of the months whose last day lies in (after, through]."""
    months = []
    month = date(after.year, after.month, 1).isoformat()
    while True:
        _, following = month_bounds(month)
        last_day = following - timedelta(days=1)
        if last_day > through:
            return months
        if last_day > after:
            months.append(month)
        month = following.isoformat()


def build_books_closed_sensor(now: Callable[[], datetime] = utc_now) -> SensorDefinition:
    @sensor(
        name="books_closed",
        target=AssetSelection.assets(MONTH_END_CLOSE),
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Starts operations/month_end_close for a month when the accounting system closes its books "
            "(Preferences.BookCloseDate moves past it). Reads the preferences when the accounting "
            f"webhook says they changed, and every {PREFERENCES_POLL.seconds // 60} minutes regardless."
        ),
    )
    def books_closed(
        context: SensorEvaluationContext, storage: PlatformStorage, accounting_api: AccountingApi
    ) -> SensorResult:
        state = read_state(context)
        hints, inbox_position = inbox_events(
            storage.inbox(), "accounting", state.get("inbox"), preferences_changed, context
        )
        moment = now()
        polled_at = datetime.fromisoformat(state["polled_at"]) if state.get("polled_at") else None
        due = polled_at is None or moment - polled_at >= PREFERENCES_POLL
        cursor = {**state, "inbox": inbox_position}
        if not any(hints) and not due:
            return SensorResult(
                skip_reason=f"books closed through {state.get('closed_through') or 'no month yet'}; "
                f"next look at the preferences by {(polled_at + PREFERENCES_POLL):%H:%M} UTC",
                cursor=json.dumps(cursor, sort_keys=True),
            )
        try:
            with accounting_api.open_client(context.log, announce=False) as client:
                through = client.books_closed_through()
        except (SourceError, SettingError) as error:
            return SensorResult(
                skip_reason=f"the accounting system's preferences were not read: {error}",
                cursor=json.dumps(cursor, sort_keys=True),
            )
        cursor["polled_at"] = moment.isoformat()
        previous = state.get("closed_through")
        cursor["closed_through"] = through.isoformat() if through else previous
        if previous is None or through is None:
            baseline = f"books closed through {through or 'no month yet'}"
            return SensorResult(
                skip_reason=f"{baseline}; watching for the next close (earlier months: backfill)",
                cursor=json.dumps(cursor, sort_keys=True),
            )
        months = months_closed_between(date.fromisoformat(previous), through)
        if not months:
            return SensorResult(
                skip_reason=f"books closed through {through}; no new close",
                cursor=json.dumps(cursor, sort_keys=True),
            )
        via = "webhook" if any(hints) else "preferences poll"
        context.log.info(f"books closed for {', '.join(m[:7] for m in months)} (seen via {via})")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"close:{month}",
                    partition_key=month,
                    tags={EVENT_TAG: f"books closed for {month[:7]} (via {via})", **RETRIED},
                )
                for month in months
            ],
            cursor=json.dumps(cursor, sort_keys=True),
        )

    return books_closed


p1_tickets = build_p1_tickets_sensor()
books_closed = build_books_closed_sensor()
