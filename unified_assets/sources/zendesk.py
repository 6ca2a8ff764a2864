"""Support tickets from Zendesk's cursor-based incremental export.

The export is a stream ordered by last update: start it at a Unix `start_time`, then follow `after_cursor`
until `end_of_stream`. It has no end time, so a closed window is cut from the stream: records before the
window's end are kept and the walk stops at the first page that reaches past it. A ticket updated while we
walk moves to the end of the stream and is read again, which is harmless (staging keeps the latest version).
Deleted tickets come through with status `deleted`. Authentication is `{email}/token:{api_token}` basic auth.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from unified_assets.sources.http import HttpPolicy, JsonApi, SourceError, describe_endpoint
from unified_assets.sources.paging import (
    ClosedOnExit,
    Page,
    Window,
    check_record_ids,
    record_timestamp,
)
from unified_assets.sources.projection import Column, projection

SYSTEM = "support (Zendesk)"
MAX_PAGE_SIZE = 1000
# Zendesk's answer to a start_time less than a minute old (or in the future): the window has no tickets yet.
TOO_RECENT = "Too recent start_time"
# Empty export pages that still say there is more, in a row, before the walk is called stuck (a page with
# deleted tickets left out can come back short, even empty, so one empty page alone proves nothing).
MAX_EMPTY_PAGES_WITH_MORE = 5

# DuckDB SELECT list turning one ticket (column `json`) into the typed columns of raw/support_tickets.
# Custom fields stay a list of (id, value): which id means what is the account's own configuration.
RAW_COLUMNS = projection(
    [
        Column("id", "$.id"),
        Column("updated_at", "$.updated_at", "timestamptz", strict=True),
        Column("created_at", "$.created_at", "timestamptz"),
        Column("status", "$.status"),
        Column("priority", "$.priority"),
        Column("ticket_type", "$.type"),
        Column("subject", "$.subject"),
        Column("description", "$.description"),
        Column("requester_id", "$.requester_id"),
        Column("organization_id", "$.organization_id"),
        Column("via_channel", "$.via.channel"),
    ],
    extra=(
        "json_extract_string(json, '$.tags[*]') as tags, "
        "[struct_pack(field_id := field ->> '$.id', value := field ->> '$.value') "
        "for field in json_extract(json, '$.custom_fields[*]')] as custom_fields"
    ),
)


# Zendesk's bulk update takes at most 100 tickets a request, and runs each request as a background job.
MAX_TICKETS_PER_BULK_UPDATE = 100
FINISHED_JOB_STATUSES = frozenset({"completed", "failed", "killed"})
# The ticket fields the platform writes sentiment to, found by their titles (an admin creates them once:
# a drop-down with the values predicted_negative / _neutral / _positive, and a decimal field).
PREDICTED_SENTIMENT_TITLE = "Predicted sentiment"
SENTIMENT_SCORE_TITLE = "Sentiment score"


@dataclass(frozen=True)
class SentimentFields:
    label_field_id: int
    score_field_id: int


@dataclass(frozen=True)
class JobStatus:
    """A background job of Zendesk's, as its status endpoint reports it."""

    job_id: str
    status: str  # queued, working, completed, failed, killed
    results: list[dict[str, Any]]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES


def ticket_updated_at(ticket: dict[str, Any]) -> datetime:
    return record_timestamp(ticket, ("updated_at",), SYSTEM, id_field="id")


class ZendeskClient(ClosedOnExit):
    """Reads tickets updated in a window from the incremental export."""

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        policy: HttpPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"Zendesk page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/api/v2/incremental/tickets/cursor.json"
        self.page_size = page_size
        token = base64.b64encode(f"{email}/token:{api_token}".encode()).decode("ascii")
        self.api = JsonApi(
            SYSTEM, policy or HttpPolicy(), headers={"Authorization": f"Basic {token}"}
        )

    def close(self) -> None:
        self.api.close()

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """One ticket as it is now (`GET /api/v2/tickets/{id}.json`)."""
        url = f"{self.base_url}/api/v2/tickets/{int(ticket_id)}.json"
        body = self.api.get_json(url, where=f"ticket {ticket_id}").body
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, dict):
            raise SourceError(
                f"{SYSTEM}: no ticket object in the answer (GET {describe_endpoint(url)})"
            )
        return ticket

    def sentiment_fields(self) -> SentimentFields:
        """The ids of the fields sentiment is written to, found by title (`GET ticket_fields.json`)."""
        url = f"{self.base_url}/api/v2/ticket_fields.json"
        body = self.api.get_json(url, where="ticket fields").body
        fields = body.get("ticket_fields") if isinstance(body, dict) else None
        by_title = {f.get("title"): f.get("id") for f in fields or [] if isinstance(f, dict)}
        missing = [
            t for t in (PREDICTED_SENTIMENT_TITLE, SENTIMENT_SCORE_TITLE) if t not in by_title
        ]
        if missing:
            raise SourceError(
                f"{SYSTEM}: no ticket field titled {' or '.join(map(repr, missing))} (GET "
                f"{describe_endpoint(url)}); an admin creates them once: a drop-down "
                f"{PREDICTED_SENTIMENT_TITLE!r} (values predicted_negative, predicted_neutral, "
                f"predicted_positive) and a decimal {SENTIMENT_SCORE_TITLE!r}"
            )
        return SentimentFields(
            int(by_title[PREDICTED_SENTIMENT_TITLE]), int(by_title[SENTIMENT_SCORE_TITLE])
        )

    def update_many(self, updates: list[dict[str, Any]]) -> JobStatus:
        """Queue a bulk update of up to 100 tickets (`PUT /api/v2/tickets/update_many.json`); the
        job's status as accepted. Zendesk applies it when the job runs: poll `job_status`."""
        if not 1 <= len(updates) <= MAX_TICKETS_PER_BULK_UPDATE:
            raise ValueError(f"a bulk update takes 1..{MAX_TICKETS_PER_BULK_UPDATE} tickets")
        url = f"{self.base_url}/api/v2/tickets/update_many.json"
        where = f"bulk update of {len(updates)} tickets"
        body = self.api.put_json(url, {"tickets": updates}, where=where).body
        return self._job_status(body, url)

    def job_status(self, job_id: str) -> JobStatus:
        """A job's status now (`GET /api/v2/job_statuses/:id.json`); NotFound once Zendesk has
        forgotten it (it keeps a job's status for about an hour)."""
        url = f"{self.base_url}/api/v2/job_statuses/{job_id}.json"
        return self._job_status(self.api.get_json(url, where=f"job {job_id}").body, url)

    def _job_status(self, body: Any, url: str) -> JobStatus:
        job = body.get("job_status") if isinstance(body, dict) else None
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise SourceError(
                f"{SYSTEM}: no job_status object in the answer ({describe_endpoint(url)})"
            )
        return JobStatus(job["id"], str(job.get("status")), list(job.get("results") or []))

    def extract(self, window: Window) -> Iterator[Page]:
        params: dict[str, Any] = {
            "start_time": int(window.start.timestamp()),
            "per_page": self.page_size,
        }
        number, cursors, empty_in_a_row = 0, {}, 0
        while True:
            number += 1
            try:
                response = self.api.get_json(self.url, params=params, where=f"page {number}")
            except SourceError as error:
                if number == 1 and TOO_RECENT in str(error):
                    yield Page(
                        1, [], 0, 0, 0.0
                    )  # e.g. today's partition a few seconds after midnight
                    return
                raise
            body = self._checked(response.body, number)
            tickets = body["tickets"]
            request = f"GET {describe_endpoint(self.url)}, page {number}"
            check_record_ids(tickets, "id", SYSTEM, request)
            timestamps = [ticket_updated_at(ticket) for ticket in tickets]
            in_window = [
                t for t, moment in zip(tickets, timestamps, strict=True) if window.contains(moment)
            ]
            yield Page(number, in_window, len(tickets), response.retries, response.elapsed_s)
            past_window = bool(timestamps) and timestamps[-1] >= window.end
            if body["end_of_stream"] or past_window or not body.get("after_cursor"):
                return
            cursor = body["after_cursor"]
            empty_in_a_row = 0 if tickets else empty_in_a_row + 1
            self._check_progress(cursor, cursors, number, empty_in_a_row)
            cursors[cursor] = number
            params = {"cursor": cursor, "per_page": self.page_size}

    def _check_progress(
        self, cursor: str, cursors: dict[str, int], number: int, empty_in_a_row: int
    ) -> None:
        """A stream that would never end: its next cursor is one it already gave, or it keeps sending
        empty pages that say there is more. Zendesk's export ends with `end_of_stream`; a proxy or a
        vendor bug that breaks that must fail the extraction, not spin on it."""
        where = f"(GET {describe_endpoint(self.url)}, page {number})"
        if cursor in cursors:
            raise SourceError(
                f"{SYSTEM}: the export's after_cursor repeats the one page {cursors[cursor]} gave, "
                f"without end_of_stream: following it would never end {where}"
            )
        if empty_in_a_row >= MAX_EMPTY_PAGES_WITH_MORE:
            raise SourceError(
                f"{SYSTEM}: {empty_in_a_row} empty pages in a row, each saying there is more "
                f"(no end_of_stream): the export is not advancing {where}"
            )

    def _checked(self, body: Any, number: int) -> dict[str, Any]:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("tickets"), list)
            or "end_of_stream" not in body
        ):
            raise SourceError(
                f"{SYSTEM}: response is not an incremental export page (no tickets list or "
                f"end_of_stream flag) (GET {describe_endpoint(self.url)}, page {number})"
            )
        return body
