"""Support speaks Zendesk: basic token auth, the cursor-based incremental export, ticket fields."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pandas as pd
import requests

from saas_simulator import SimulatorServer
from unified_assets_tests.support.simulator_requests import (
    zendesk_all,
    zendesk_auth,
    zendesk_export,
)
from unified_assets_tests.support.simulators import NO_RATE_LIMITS, SIMULATOR_FROZEN_AT

START = datetime(2026, 3, 1, tzinfo=UTC)


def test_bad_credentials_are_refused(server):
    url = f"{server.base_urls['support']}/api/v2/incremental/tickets/cursor.json"
    for auth in (
        ("someone@example.com/token", "nope"),
        (server.credentials.zendesk_email, server.credentials.zendesk_api_token),
    ):
        response = requests.get(url, params={"start_time": 0}, auth=auth, timeout=5)
        assert response.status_code == 401 and response.json() == {
            "error": "Couldn't authenticate you"
        }


def test_export_envelope_and_ticket_fields(server):
    response = zendesk_export(server, {"start_time": int(START.timestamp()), "per_page": 10})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    body = response.json()
    assert set(body) == {
        "tickets",
        "after_url",
        "after_cursor",
        "before_url",
        "before_cursor",
        "end_of_stream",
    }
    assert len(body["tickets"]) == 10 and body["end_of_stream"] is False
    assert (
        body["after_url"].startswith(server.base_urls["support"])
        and body["after_cursor"] in body["after_url"]
    )
    ticket = body["tickets"][0]
    for key in (
        "id",
        "url",
        "subject",
        "raw_subject",
        "description",
        "priority",
        "status",
        "type",
        "requester_id",
        "organization_id",
        "tags",
        "custom_fields",
        "via",
        "created_at",
        "updated_at",
        "generated_timestamp",
    ):
        assert key in ticket, key
    assert isinstance(ticket["id"], int) and ticket["updated_at"].endswith("Z")
    assert ticket["generated_timestamp"] == int(pd.Timestamp(ticket["updated_at"]).timestamp())
    fields = requests.get(
        f"{server.base_urls['support']}/api/v2/ticket_fields.json",
        auth=zendesk_auth(server),
        timeout=5,
    )
    by_title = {f["title"]: f["id"] for f in fields.json()["ticket_fields"]}
    custom_ids = {f["id"] for f in ticket["custom_fields"]}
    assert {
        by_title["Product SKU"],
        by_title["Account name"],
        by_title["Agent sentiment"],
        by_title["Predicted sentiment"],
        by_title["Sentiment score"],
    } == custom_ids


def test_following_the_cursor_returns_the_ground_truth_once(server, world):
    tickets = zendesk_all(server, int(START.timestamp()), per_page=100)
    keys = [(t["updated_at"], t["id"]) for t in tickets]
    assert keys == sorted(keys) and len({t["id"] for t in tickets}) == len(tickets) > 300
    lag_end = SIMULATOR_FROZEN_AT - timedelta(seconds=60)
    truth = world.ground_truth(
        "support",
        as_of=SIMULATOR_FROZEN_AT,
        updated_from=START,
        updated_to=lag_end + timedelta(seconds=1),
    )
    assert [str(t["id"]) for t in tickets] == truth["id"].tolist()
    assert tickets == truth["record"].tolist()
    assert "deleted" in {t["status"] for t in tickets}
    without = zendesk_export(
        server, {"start_time": int(START.timestamp()), "exclude_deleted": "true"}
    ).json()
    assert [t for t in tickets if t["status"] != "deleted"][:1000] == without["tickets"]


def test_the_last_minute_is_held_back(fresh_world):
    """Like Zendesk, the export leaves out changes made in the minute before the request."""
    newest = fresh_world.ground_truth("support", as_of=SIMULATOR_FROZEN_AT, include_records=False)[
        "updated_at"
    ].max()
    since = int(newest.timestamp()) - 1
    with SimulatorServer(fresh_world, rate_limits=NO_RATE_LIMITS) as server:
        fresh_world.clock.set(newest.to_pydatetime() + timedelta(seconds=30))
        held_back = zendesk_all(server, since)
        fresh_world.clock.advance(timedelta(seconds=31))
        released = zendesk_all(server, since)
    assert all(pd.Timestamp(t["updated_at"]) < newest for t in held_back)
    assert any(pd.Timestamp(t["updated_at"]) == newest for t in released)


def test_a_ticket_updated_after_the_cursor_passed_reappears(fresh_world):
    with SimulatorServer(fresh_world, rate_limits=NO_RATE_LIMITS) as server:
        since = int((SIMULATOR_FROZEN_AT - timedelta(days=3)).timestamp())
        first = zendesk_export(server, {"start_time": since}).json()
        assert first["end_of_stream"] is True
        seen = {t["id"]: t["updated_at"] for t in first["tickets"]}
        fresh_world.clock.advance(timedelta(days=2))
        later = zendesk_export(server, url=first["after_url"]).json()["tickets"]
    again = [t for t in later if t["id"] in seen]
    assert again and all(t["updated_at"] > seen[t["id"]] for t in again)
    assert any(t["id"] not in seen for t in later), "and new tickets arrive"


def test_bad_requests_get_zendesk_errors(server):
    for params in (
        {},
        {"start_time": "yesterday"},
        {"start_time": 0, "per_page": 1001},
        {"cursor": "garbage!"},
        {"start_time": int(SIMULATOR_FROZEN_AT.timestamp()) + 3600},
    ):
        response = zendesk_export(server, params)
        assert response.status_code == 400, params
        assert set(response.json()) == {"error", "description"}
    forged = base64.urlsafe_b64encode(b"v2:1").decode()
    response = zendesk_export(server, {"cursor": forged})
    assert response.status_code == 400 and response.json()["error"] == "InvalidPaginationParameter"
    assert zendesk_export(server, {}).json()["error"] == "InvalidValue"


def test_single_ticket_endpoint_matches_the_export(server):
    ticket = zendesk_export(server, {"start_time": int(START.timestamp()), "per_page": 1}).json()[
        "tickets"
    ][0]
    response = requests.get(
        f"{server.base_urls['support']}/api/v2/tickets/{ticket['id']}.json",
        auth=zendesk_auth(server),
        timeout=5,
    )
    assert response.json() == {"ticket": ticket}


# ------------------------------------------------------------------------------------ bulk updates


def bulk_update(server: SimulatorServer, tickets: list[dict]) -> requests.Response:
    return requests.put(
        f"{server.base_urls['support']}/api/v2/tickets/update_many.json",
        json={"tickets": tickets},
        auth=zendesk_auth(server),
        timeout=5,
    )


def job_status(server: SimulatorServer, url: str) -> dict:
    response = requests.get(url, auth=zendesk_auth(server), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["job_status"]


def ticket(server: SimulatorServer, ticket_id: int) -> dict:
    url = f"{server.base_urls['support']}/api/v2/tickets/{ticket_id}.json"
    return requests.get(url, auth=zendesk_auth(server), timeout=5).json()["ticket"]


def test_a_bulk_update_is_a_job_applied_when_it_runs_and_shown_on_ticket_reads(fresh_world):
    with SimulatorServer(fresh_world, rate_limits=NO_RATE_LIMITS) as server:
        tickets = zendesk_export(server, {"start_time": int(START.timestamp()), "per_page": 50})
        by_status = {t["status"]: t for t in tickets.json()["tickets"]}
        open_one, closed_one = by_status["open"], by_status["closed"]
        field_ids = {
            f["title"]: f["id"]
            for f in requests.get(
                f"{server.base_urls['support']}/api/v2/ticket_fields.json",
                auth=zendesk_auth(server),
                timeout=5,
            ).json()["ticket_fields"]
        }
        label, score = field_ids["Predicted sentiment"], field_ids["Sentiment score"]
        update = {
            "custom_fields": [
                {"id": label, "value": "predicted_negative"},
                {"id": score, "value": -0.6},
            ],
            "additional_tags": ["predicted_negative"],
            "remove_tags": ["predicted_positive"],
        }
        answer = bulk_update(
            server, [{"id": open_one["id"], **update}, {"id": closed_one["id"], **update}]
        )
        assert answer.status_code == 200
        job = answer.json()["job_status"]
        assert (job["status"], job["total"], job["results"]) == ("queued", 2, None)
        assert "predicted_negative" not in ticket(server, open_one["id"])["tags"], "not yet run"

        assert job_status(server, job["url"])["status"] == "queued", "polled once: not run yet"
        done = job_status(server, job["url"])
        assert done["status"] == "completed" and done["progress"] == 2
        assert done["results"] == [
            {"id": open_one["id"], "action": "update", "success": True, "status": "Updated"},
            {
                "id": closed_one["id"],
                "action": "update",
                "success": False,
                "status": "Failed",
                "errors": "closed prevents ticket update",
            },
        ]
        shown = ticket(server, open_one["id"])
        values = {f["id"]: f["value"] for f in shown["custom_fields"]}
        assert (values[label], values[score]) == ("predicted_negative", -0.6)
        assert "predicted_negative" in shown["tags"]
        assert {f["id"]: f["value"] for f in ticket(server, closed_one["id"])["custom_fields"]}[
            label
        ] is None
        assert [w["ticket_id"] for w in server.ticket_updates.writes()] == [open_one["id"]]

        again = bulk_update(server, [{"id": open_one["id"], **update}]).json()["job_status"]
        while job_status(server, again["url"])["status"] != "completed":
            pass
        assert len(server.ticket_updates.writes()) == 1, "the same values again change nothing"


def test_bulk_updates_are_refused_as_zendesk_refuses_them(fresh_world):
    with SimulatorServer(fresh_world, rate_limits=NO_RATE_LIMITS) as server:
        too_many = bulk_update(server, [{"id": n} for n in range(1, 102)])
        assert too_many.status_code == 400 and "at most 100" in too_many.json()["description"]
        not_writable = bulk_update(server, [{"id": 1, "custom_fields": [{"id": 1, "value": 2}]}])
        assert not_writable.status_code == 400
        for _ in range(30):
            assert bulk_update(server, [{"id": 1}]).status_code == 200
        queue_full = bulk_update(server, [{"id": 1}])
        assert queue_full.status_code == 429 and queue_full.headers["Retry-After"] == "10"
        missing = requests.get(
            f"{server.base_urls['support']}/api/v2/job_statuses/NOPE.json",
            auth=zendesk_auth(server),
            timeout=5,
        )
        assert missing.status_code == 404
