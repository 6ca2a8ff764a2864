"""Support as Zendesk speaks it: the cursor-based incremental ticket export, custom fields, basic
auth.

`GET /api/v2/incremental/tickets/cursor.json?start_time=<unix>` and then `?cursor=<after_cursor>`,
with `{email}/token:{api_token}` basic auth. The stream is ordered by (updated_at, id); a ticket
updated after the cursor passed it shows up again further on. As on the real service, changes made
in the minute before a request are left out (`export_lag_s`) so the stream never shows half-finished
updates.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from saas_simulator.coupa import po_number
from saas_simulator.generate import (
    CHANNELS,
    PRIORITIES,
    TICKET_EVENTS,
    TICKET_TYPES,
    TONES,
    TOPIC_NAMES,
)
from saas_simulator.protocol import ApiRequest, ApiResponse, BadRequest, ServeContext
from saas_simulator.tables import ID_FACTOR, TOUCH, SystemView
from saas_simulator.text import TicketFacts, TicketText, ticket_text
from saas_simulator.ticket_updates import MAX_QUEUED_JOBS, TicketUpdates
from saas_simulator.timeutil import iso_z

if TYPE_CHECKING:
    from saas_simulator.worldview import WorldView

SYSTEM = "support"
MAX_PER_PAGE = 1000
DEFAULT_EXPORT_LAG_S = 60
ACCOUNT_URL = "https://simulated.zendesk.com"
SUPPORT_ADDRESS = "support@simulated.zendesk.com"
PRODUCT_FIELD_ID = 360001234501
ACCOUNT_FIELD_ID = 360001234502
SENTIMENT_FIELD_ID = 360001234503
# The fields an integration writes (the platform's sentiment): empty until a bulk update sets them.
PREDICTED_SENTIMENT_FIELD_ID = 360001234504
SENTIMENT_SCORE_FIELD_ID = 360001234505
WRITABLE_FIELD_IDS = (PREDICTED_SENTIMENT_FIELD_ID, SENTIMENT_SCORE_FIELD_ID)
MAX_TICKETS_PER_BULK_UPDATE = 100
TICKET_FORM_ID = 360000012345
BRAND_ID = 360000001234
AGENT_IDS = tuple(380_000_000_001 + i for i in range(6))
GROUP_OF_TOPIC = {
    "billing": 360000111001,
    "account_update": 360000111001,
    "late_delivery": 360000111002,
    "delivery_question": 360000111002,
}
PRODUCT_GROUP = 360000111003
CREATED, OPENED, ESCALATED, PENDING, SOLVED, CLOSED, DELETED = range(len(TICKET_EVENTS))
STATUS_OF_EVENT = {
    CREATED: "new",
    OPENED: "open",
    ESCALATED: "open",
    PENDING: "pending",
    SOLVED: "solved",
    CLOSED: "closed",
    DELETED: "deleted",
}

# ---------------------------------------------------------------------------------------- rendering


def cached_ticket_text(world: WorldView, cols: dict[str, np.ndarray], record: int) -> TicketText:
    """A ticket's text (every version shares it), written once per world and then kept."""
    return world.ticket_text_cache.get(
        record, lambda: ticket_text(world.config.seed, ticket_facts(world, cols, record))
    )


def ticket_facts(world: WorldView, cols: dict[str, np.ndarray], record: int) -> TicketFacts:
    catalog = world.catalog
    customer = int(cols["customer"][record])
    contact = int(cols["contact"][record])
    sku = int(cols["sku"][record])
    po = int(cols["po"][record])
    offsets = catalog.customers.contact_offsets
    others = [c for c in range(int(offsets[customer]), int(offsets[customer + 1])) if c != contact]
    if others:
        colleague_email = catalog.contacts.email[others[record % len(others)]]
    else:
        colleague_email = f"accounts.payable@{catalog.customers.domain[customer]}"
    return TicketFacts(
        ticket_id=record + 1,
        topic=TOPIC_NAMES[int(cols["topic"][record])],
        tone=TONES[int(cols["tone"][record])],
        first_name=catalog.contacts.first[contact],
        last_name=catalog.contacts.last[contact],
        email=catalog.contacts.email[contact],
        phone=catalog.contacts.phone[contact],
        country=catalog.customers.country[customer],
        company=catalog.customers.zendesk_name[customer],
        sku=catalog.products.sku[sku] if sku >= 0 else None,
        product=catalog.products.name[sku] if sku >= 0 else None,
        po_number=po_number(po) if po >= 0 else None,
        colleague_email=colleague_email,
    )


def render_tickets(
    world: WorldView,
    view: SystemView,
    records: np.ndarray,
    versions: np.ndarray,
    written: TicketUpdates | None = None,
) -> list[dict]:
    """The wire dicts of the given (record, version) pairs, exactly as the export returns them, with
    what integrations have `written` to them (custom field values, tags)."""
    cols = view.table.records
    catalog = world.catalog
    out = []
    for record, version in zip(records.tolist(), versions.tolist(), strict=True):
        events = view.events(record, version)
        kinds = [kind for _, kind in events]
        text = cached_ticket_text(world, cols, record)
        customer = int(cols["customer"][record])
        contact = int(cols["contact"][record])
        topic = TOPIC_NAMES[int(cols["topic"][record])]
        opened = OPENED in kinds
        priority = int(cols["priority"][record]) - (1 if ESCALATED in kinds else 0)
        status = STATUS_OF_EVENT[[k for k in kinds if k != TOUCH][-1]]
        sentiment = (
            TONES[int(cols["tone"][record])] if opened and bool(cols["labelled"][record]) else None
        )
        sku = int(cols["sku"][record])
        product_value = (
            catalog.products.zendesk_product[sku]
            if sku >= 0 and cols["sku_field"][record]
            else None
        )
        custom_fields = [
            {"id": PRODUCT_FIELD_ID, "value": product_value},
            {"id": ACCOUNT_FIELD_ID, "value": catalog.customers.zendesk_name[customer]},
            {"id": SENTIMENT_FIELD_ID, "value": sentiment},
        ]
        tags = [topic]
        if sentiment:
            tags.append(sentiment)
        if TOUCH in kinds:
            tags.append("sync_touch")
        custom_fields, tags = _with_written(custom_fields, tags, written, record + 1)
        channel = CHANNELS[int(cols["channel"][record])]
        updated = events[-1][0]
        ticket: dict[str, Any] = {
            "url": f"{ACCOUNT_URL}/api/v2/tickets/{record + 1}.json",
            "id": record + 1,
            "external_id": None,
            "via": _via(channel, catalog.contacts, contact),
            "created_at": iso_z(events[0][0]),
            "updated_at": iso_z(updated),
            "generated_timestamp": updated,
            "type": TICKET_TYPES[int(cols["type"][record])],
            "subject": text.subject,
            "raw_subject": text.subject,
            "description": text.description,
            "priority": PRIORITIES[max(priority, 0)],
            "status": status,
            "recipient": SUPPORT_ADDRESS if channel == "email" else None,
            "requester_id": int(catalog.contacts.zendesk_user_id[contact]),
            "submitter_id": int(catalog.contacts.zendesk_user_id[contact]),
            "assignee_id": AGENT_IDS[int(cols["assignee"][record])] if opened else None,
            "organization_id": int(catalog.customers.zendesk_org_id[customer]),
            "group_id": GROUP_OF_TOPIC.get(topic, PRODUCT_GROUP) if opened else None,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": tags,
            "custom_fields": custom_fields,
            "satisfaction_rating": None,
            "sharing_agreement_ids": [],
            "fields": [dict(f) for f in custom_fields],
            "followup_ids": [],
            "ticket_form_id": TICKET_FORM_ID,
            "brand_id": BRAND_ID,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": False,
        }
        out.append(ticket)
    return out


def _with_written(
    fields: list[dict], tags: list[str], written: TicketUpdates | None, ticket_id: int
) -> tuple[list[dict], list[str]]:
    """The ticket's custom fields and tags with the writable fields (empty unless written) and what
    bulk updates have set, added and removed."""
    done = written.written(ticket_id) if written is not None else {}
    values = done.get("custom_fields", {})
    fields = fields + [{"id": f, "value": values.get(str(f))} for f in WRITABLE_FIELD_IDS]
    removed = set(done.get("removed_tags", []))
    kept = [tag for tag in tags if tag not in removed]
    return fields, kept + [tag for tag in done.get("tags", []) if tag not in kept]


def _via(channel: str, contacts, contact: int) -> dict:
    name = f"{contacts.first[contact]} {contacts.last[contact]}"
    if channel == "email":
        source = {
            "from": {"address": contacts.email[contact], "name": name},
            "to": {"address": SUPPORT_ADDRESS, "name": "Support"},
            "rel": None,
        }
        return {"channel": "email", "source": source}
    if channel == "phone":
        return {
            "channel": "voice",
            "source": {
                "from": {"phone": contacts.phone[contact], "name": name},
                "to": {},
                "rel": "inbound",
            },
        }
    return {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}}


def apply_drift(tickets: list[dict], mode: str) -> list[dict]:
    for ticket in tickets:
        if mode == "new_field":
            ticket["custom_status_id"] = 360000999001
        elif mode == "renamed_field":
            ticket["org_id"] = ticket.pop("organization_id")
        elif mode == "changed_type":
            for key in ("custom_fields", "fields"):
                for entry in ticket[key]:
                    entry["id"] = str(entry["id"])
    return tickets


TICKET_FIELDS = {
    "ticket_fields": [
        {
            "id": 360000000001,
            "type": "subject",
            "title": "Subject",
            "active": True,
            "required": True,
        },
        {
            "id": 360000000002,
            "type": "description",
            "title": "Description",
            "active": True,
            "required": True,
        },
        {
            "id": 360000000003,
            "type": "status",
            "title": "Status",
            "active": True,
            "required": False,
        },
        {
            "id": 360000000004,
            "type": "priority",
            "title": "Priority",
            "active": True,
            "required": False,
        },
        {
            "id": PRODUCT_FIELD_ID,
            "type": "text",
            "title": "Product SKU",
            "description": "The SKU the ticket is about, as the agent typed it",
            "active": True,
            "required": False,
        },
        {
            "id": ACCOUNT_FIELD_ID,
            "type": "text",
            "title": "Account name",
            "description": "The customer's account, as the agent typed it",
            "active": True,
            "required": False,
        },
        {
            "id": SENTIMENT_FIELD_ID,
            "type": "tagger",
            "title": "Agent sentiment",
            "description": "The agent's reading of the customer's mood",
            "active": True,
            "required": False,
            "custom_field_options": [
                {"id": 360000500001, "name": "Negative", "value": "negative"},
                {"id": 360000500002, "name": "Neutral", "value": "neutral"},
                {"id": 360000500003, "name": "Positive", "value": "positive"},
            ],
        },
        {
            "id": PREDICTED_SENTIMENT_FIELD_ID,
            "type": "tagger",
            "title": "Predicted sentiment",
            "description": "The customer's mood as the data platform reads the ticket's text",
            "active": True,
            "required": False,
            "custom_field_options": [
                {"id": 360000500011, "name": "Negative", "value": "predicted_negative"},
                {"id": 360000500012, "name": "Neutral", "value": "predicted_neutral"},
                {"id": 360000500013, "name": "Positive", "value": "predicted_positive"},
            ],
        },
        {
            "id": SENTIMENT_SCORE_FIELD_ID,
            "type": "decimal",
            "title": "Sentiment score",
            "description": "-1 (very negative) to 1 (very positive), from the data platform",
            "active": True,
            "required": False,
        },
    ],
    "next_page": None,
    "previous_page": None,
    "count": 9,
}


def handle_ticket_fields(base_url: str) -> ApiResponse:
    fields = []
    for entry in TICKET_FIELDS["ticket_fields"]:
        fields.append(
            {
                "url": f"{ACCOUNT_URL}/api/v2/ticket_fields/{entry['id']}.json",
                **entry,
                "raw_title": entry["title"],
            }
        )
    return ApiResponse(200, {**TICKET_FIELDS, "ticket_fields": fields})


# ------------------------------------------------------------------------------------------- errors


def error(
    status: int, kind: str, description: str, headers: dict[str, str] | None = None
) -> ApiResponse:
    return ApiResponse(status, {"error": kind, "description": description}, headers=headers or {})


def auth_failed() -> ApiResponse:
    return ApiResponse(
        401,
        {"error": "Couldn't authenticate you"},
        headers={"WWW-Authenticate": 'Basic realm="Web Password"'},
    )


def throttled() -> ApiResponse:
    return error(
        429,
        "APIRateLimitExceeded",
        "Number of allowed incremental export API requests per minute exceeded",
    )


def server_error(status: int) -> ApiResponse:
    kinds = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable"}
    return error(status, kinds.get(status, "ServiceUnavailable"), "Please try again later")


def not_found() -> ApiResponse:
    return error(404, "InvalidEndpoint", "Not found")


# ---------------------------------------------------------------------------------------- execution


class BadCursor(BadRequest):
    """A cursor this export did not issue."""


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, key = text.partition(":")
        if version != "v1" or not key.isdigit():
            raise ValueError
        return int(key)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor(f"cursor {cursor!r} is not a cursor this export issued") from None


def handle_export(request: ApiRequest, ctx: ServeContext, export_lag_s: float) -> ApiResponse:
    try:
        after_key, per_page = _export_params(request.query, ctx.now)
    except BadCursor as problem:
        return error(400, "InvalidPaginationParameter", str(problem))
    except BadRequest as problem:
        return error(400, "InvalidValue", str(problem))
    view = ctx.world.view(SYSTEM, ctx.now)
    positions = view.index.visible_after_key(ctx.now, after_key, until=ctx.now - export_lag_s)
    if request.query.get("exclude_deleted", ["false"])[-1].lower() == "true":
        deleted_at = view.table.records["deleted"][view.index.record[positions]]
        positions = positions[deleted_at != view.index.ts[positions]]
    page = positions[:per_page]
    end_of_stream = len(positions) <= per_page
    next_key = int(view.index.key[page[-1]]) if len(page) else after_key
    if ctx.duplicates and "cursor" in request.query:
        earlier = _served_before(view, ctx.now, after_key, ctx.duplicates)
        if len(earlier):
            ctx.applied.add("duplicate_records")
            page = np.concatenate([earlier, page])
    records, versions = view.index.record[page], view.index.version[page]
    tickets = render_tickets(ctx.world, view, records, versions, ctx.ticket_updates)
    if ctx.drift:
        apply_drift(tickets, ctx.drift)
    if ctx.paging == "empty_pages_with_more":
        ctx.applied.add(ctx.paging)
        tickets, records, page = [], records[:0], page[:0]
        next_key, end_of_stream = after_key + 1, False
    elif ctx.paging == "repeated_cursor":
        ctx.applied.add(ctx.paging)
        next_key, end_of_stream = after_key, False
    after_cursor = encode_cursor(next_key)
    before_cursor = encode_cursor(int(view.index.key[page[0]]) - 1) if len(page) else None
    suffix = f"&per_page={per_page}" if "per_page" in request.query else ""
    url = f"{request.base_url}/api/v2/incremental/tickets/cursor.json?cursor="
    body = {
        "tickets": tickets,
        "after_url": f"{url}{after_cursor}{suffix}",
        "after_cursor": after_cursor,
        "before_url": f"{url}{before_cursor}{suffix}" if before_cursor else None,
        "before_cursor": before_cursor,
        "end_of_stream": end_of_stream,
    }
    return ApiResponse(200, body, records=records.tolist())


def handle_update_many(request: ApiRequest, ctx: ServeContext, store: TicketUpdates) -> ApiResponse:
    """`PUT /api/v2/tickets/update_many.json` with `{"tickets": [{"id", "custom_fields",
    "additional_tags", "remove_tags"}, ...]}` (at most 100): queued as a job, answered with its status."""
    try:
        updates = _bulk_updates(request.body)
    except BadRequest as problem:
        return error(400, "InvalidValue", str(problem))
    if store.queued_jobs() >= MAX_QUEUED_JOBS:
        return error(
            429,
            "TooManyJobs",
            f"Number of queued jobs exceeds the limit of {MAX_QUEUED_JOBS}",
            headers={"Retry-After": "10"},
        )
    refusals = _refusals(ctx, [int(update["id"]) for update in updates])
    job = store.submit(updates, refusals, iso_z(int(ctx.now)))
    return ApiResponse(200, {"job_status": _job_status(request.base_url, job)})


def handle_job_status(
    request: ApiRequest, ctx: ServeContext, job_id: str, store: TicketUpdates
) -> ApiResponse:
    """`GET /api/v2/job_statuses/:id.json`."""
    job = store.poll(job_id, iso_z(int(ctx.now)))
    if job is None:
        return error(404, "RecordNotFound", "Not found")
    return ApiResponse(200, {"job_status": _job_status(request.base_url, job)})


def _bulk_updates(body: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    updates = payload.get("tickets") if isinstance(payload, dict) else None
    if not isinstance(updates, list) or not updates:
        raise BadRequest("tickets must be a non-empty array")
    if len(updates) > MAX_TICKETS_PER_BULK_UPDATE:
        raise BadRequest(f"at most {MAX_TICKETS_PER_BULK_UPDATE} tickets per request")
    for update in updates:
        if not isinstance(update, dict) or not isinstance(update.get("id"), int):
            raise BadRequest("every ticket needs an integer id")
        fields = update.get("custom_fields", [])
        if not all(isinstance(f, dict) and f.get("id") in WRITABLE_FIELD_IDS for f in fields):
            raise BadRequest(f"custom_fields may set only fields {list(WRITABLE_FIELD_IDS)}")
    return updates


def _refusals(ctx: ServeContext, ticket_ids: list[int]) -> dict[int, str]:
    """The tickets a job will fail to update, and why: unknown ones, and closed ones (Zendesk refuses
    to update a closed ticket)."""
    view = ctx.world.view(SYSTEM, ctx.now)
    refusals = {}
    for ticket_id in ticket_ids:
        position = view.index.visible_position_of(ctx.now, ticket_id - 1) if ticket_id > 0 else None
        if position is None:
            refusals[ticket_id] = "TicketNotFound"
            continue
        record, version = view.index.record[[position]], view.index.version[[position]]
        [ticket] = render_tickets(ctx.world, view, record, version)
        if ticket["status"] in ("closed", "deleted"):
            refusals[ticket_id] = f"{ticket['status']} prevents ticket update"
    return refusals


def _job_status(base_url: str, job: dict[str, Any]) -> dict[str, Any]:
    done = job["status"] == "completed"
    return {
        "id": job["id"],
        "url": f"{base_url}/api/v2/job_statuses/{job['id']}.json",
        "job_type": "bulk_update",
        "total": job["total"],
        "progress": job["total"] if done else 0,
        "status": job["status"],
        "message": "Completed at " + job["submitted_at"] if done else None,
        "results": job["results"],
    }


def handle_one(ctx: ServeContext, ticket_id: str) -> ApiResponse:
    if not ticket_id.isdigit() or int(ticket_id) < 1:
        return error(404, "RecordNotFound", "Not found")
    view = ctx.world.view(SYSTEM, ctx.now)
    position = view.index.visible_position_of(ctx.now, int(ticket_id) - 1)
    if position is None:
        return error(404, "RecordNotFound", "Not found")
    record, version = view.index.record[[position]], view.index.version[[position]]
    ticket = render_tickets(ctx.world, view, record, version, ctx.ticket_updates)
    if ctx.drift:
        apply_drift(ticket, ctx.drift)
    return ApiResponse(200, {"ticket": ticket[0]}, records=record.tolist())


def _export_params(query: dict[str, list[str]], now: float) -> tuple[int, int]:
    unknown = set(query) - {"start_time", "cursor", "per_page", "include", "exclude_deleted"}
    if unknown:
        raise BadRequest(f"unknown parameter {sorted(unknown)[0]!r}")
    per_page = MAX_PER_PAGE
    if "per_page" in query:
        raw = query["per_page"][-1]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PER_PAGE:
            raise BadRequest(f"per_page must be between 1 and {MAX_PER_PAGE}, got {raw!r}")
        per_page = int(raw)
    if "cursor" in query:
        return decode_cursor(query["cursor"][-1]), per_page
    if "start_time" not in query:
        raise BadRequest("start_time is required for the first request (then follow after_cursor)")
    raw = query["start_time"][-1]
    if not raw.lstrip("-").isdigit():
        raise BadRequest(f"start_time must be a Unix timestamp in seconds, got {raw!r}")
    start = int(raw)
    if start > now:
        raise BadRequest("Too recent start_time. Use a start_time older than 1 minute")
    return max(start, 0) * ID_FACTOR, per_page


def _served_before(view: SystemView, now: float, after_key: int, count: int) -> np.ndarray:
    """The last `count` visible versions at or before a cursor: how the previous page ended."""
    index = view.index
    end = int(np.searchsorted(index.key, after_key, side="right"))
    start = max(0, end - 20 * count - 1000)
    now_s = int(now)
    window = np.arange(start, end)
    visible = window[(index.ts[window] <= now_s) & (index.next_ts[window] > now_s)]
    return visible[-count:] if count else visible[:0]
