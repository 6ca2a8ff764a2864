"""What the support system keeps that the platform writes: custom field values and tags on tickets, written
through Zendesk's bulk update (`PUT /api/v2/tickets/update_many.json`), and the background jobs that write
them (`GET /api/v2/job_statuses/:id.json`).

As in Zendesk, a bulk update is not applied when it is accepted: it is queued as a job, answered with the
job's status, and applied when the job runs. Here a job runs when it is polled for the `POLLS_TO_COMPLETE`th
time ("queued", then "completed" with a result per ticket), so a client must poll, and a test can stop
a client between the two. Tickets that cannot take the update (unknown, or closed: Zendesk refuses to
update a closed ticket) fail in the job's results; the others are written. Every change is recorded with
its time, so a test can tell a write from a repeated one.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from saas_simulator.state import JsonState

POLLS_TO_COMPLETE = 2
# Zendesk's job queue: more queued jobs than this and the next bulk update is refused with a 429.
MAX_QUEUED_JOBS = 30


class TicketUpdates:
    def __init__(self, path: Path | None = None):
        self._state = JsonState(path, lambda: {"tickets": {}, "jobs": {}, "writes": []})

    def queued_jobs(self) -> int:
        jobs = self._state.read()["jobs"].values()
        return sum(1 for job in jobs if job["status"] == "queued")

    def submit(self, updates: list[dict[str, Any]], refusals: dict[int, str], at: str) -> dict:
        """Queue a job for `updates` (Zendesk's ticket objects: id, custom_fields, additional_tags,
        remove_tags); `refusals` names the tickets the job will fail, and why."""
        job = {
            "id": uuid.uuid4().hex[:26].upper(),
            "status": "queued",
            "total": len(updates),
            "submitted_at": at,
            "polls": 0,
            "updates": updates,
            "refusals": {str(ticket): reason for ticket, reason in refusals.items()},
            "results": None,
        }
        with self._state.changing() as state:
            state["jobs"][job["id"]] = job
        return job

    def poll(self, job_id: str, at: str) -> dict | None:
        """The job as it is now (None when unknown); its `POLLS_TO_COMPLETE`th poll runs it."""
        with self._state.changing() as state:
            job = state["jobs"].get(job_id)
            if job is None:
                return None
            job["polls"] += 1
            if job["status"] == "queued" and job["polls"] >= POLLS_TO_COMPLETE:
                job["results"] = [self._apply(state, update, job, at) for update in job["updates"]]
                job["status"] = "completed"
            return dict(job)

    def written(self, ticket_id: int) -> dict[str, Any]:
        """What has been written to the ticket: {"custom_fields": {id: value}, "tags": [...],
        "removed_tags": [...]}, empty when nothing."""
        return self._state.read()["tickets"].get(str(ticket_id), {})

    def everything_written(self) -> dict[int, dict[str, Any]]:
        return {int(k): v for k, v in self._state.read()["tickets"].items()}

    def writes(self) -> list[dict[str, Any]]:
        """Every change a job made: ticket, time, and what changed."""
        return list(self._state.read()["writes"])

    @staticmethod
    def _apply(state: dict, update: dict, job: dict, at: str) -> dict[str, Any]:
        ticket_id = int(update["id"])
        refusal = job["refusals"].get(str(ticket_id))
        if refusal is not None:
            return {
                "id": ticket_id,
                "action": "update",
                "success": False,
                "status": "Failed",
                "errors": refusal,
            }
        current = state["tickets"].setdefault(
            str(ticket_id), {"custom_fields": {}, "tags": [], "removed_tags": []}
        )
        before = {"fields": dict(current["custom_fields"]), "tags": list(current["tags"])}
        for field in update.get("custom_fields", []):
            current["custom_fields"][str(field["id"])] = field["value"]
        removed = set(update.get("remove_tags", []))
        added = [t for t in update.get("additional_tags", []) if t not in current["tags"]]
        current["tags"] = [t for t in current["tags"] if t not in removed] + added
        current["removed_tags"] = sorted(
            (set(current["removed_tags"]) | removed) - set(current["tags"])
        )
        after = {"fields": current["custom_fields"], "tags": current["tags"]}
        if after != before:
            state["writes"].append({"ticket_id": ticket_id, "at": at, "job": job["id"]})
        return {"id": ticket_id, "action": "update", "success": True, "status": "Updated"}
