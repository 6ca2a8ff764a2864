"""Ticket sentiment written back to the support system, so agents can sort a queue by it.

Each scored ticket gets two custom fields (a drop-down label `predicted_<label>` and a decimal score) and the
label as a tag, through Zendesk's bulk update: at most 100 tickets a request, each request a background job
that is applied when it runs, so the job's status is polled until it has finished and says, per ticket,
whether the update was taken (Zendesk refuses to update a closed ticket).

Only tickets whose label or score differ from what the support system last took are sent. That knowledge is
a ledger kept beside the platform's data, one row per ticket: what was sent, and whether it is `pending` (in
a job not yet seen finished), `written` or `refused`. The ledger is saved when a job is submitted and again
when it has finished, so a run that dies in between leaves its job `pending`, and the next run first asks
Zendesk how that job ended instead of sending the tickets again. Only a job Zendesk has forgotten (it keeps
a job's status for about an hour) is sent again, with the same values: nothing is ever written twice
with different values, and values already taken are not sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from unified_assets.sources.http import NotFound, SourceError
from unified_assets.sources.zendesk import (
    MAX_TICKETS_PER_BULK_UPDATE,
    SYSTEM,
    JobStatus,
    SentimentFields,
)

LABELS = ("negative", "neutral", "positive")
LEDGER_COLUMNS = ["ticket_id", "label", "score", "state", "job_id", "reason"]


class Ledger(Protocol):
    """Where the record of what the support system took is kept (a table published whole)."""

    def read(self) -> pd.DataFrame | None: ...

    def write(self, table: pd.DataFrame) -> None: ...


class BulkUpdates(Protocol):
    """The support system's bulk update and job status endpoints (`sources.zendesk.ZendeskClient`)."""

    def update_many(self, updates: list[dict]) -> JobStatus: ...

    def job_status(self, job_id: str) -> JobStatus: ...


@dataclass
class WriteBack:
    written: int = 0  # tickets the support system took in this run
    unchanged: int = 0  # tickets it already holds with these values: not sent
    refused: int = (
        0  # tickets it refused (closed, or gone), in this run or before, with these values
    )
    resumed_jobs: int = 0  # jobs an earlier run submitted and did not see finish


def tag_of(label: str) -> str:
    return f"predicted_{label}"


def ticket_update(ticket_id: int, label: str, score: float, fields: SentimentFields) -> dict:
    """One ticket's entry in a bulk update: both fields, the label's tag, the other labels' tags off."""
    if label not in LABELS:
        raise ValueError(f"ticket {ticket_id}: sentiment label {label!r} is not one of {LABELS}")
    return {
        "id": int(ticket_id),
        "custom_fields": [
            {"id": fields.label_field_id, "value": tag_of(label)},
            {"id": fields.score_field_id, "value": float(score)},
        ],
        "additional_tags": [tag_of(label)],
        "remove_tags": [tag_of(other) for other in LABELS if other != label],
    }


class JobWatch:
    """Polls a job until it has finished: every `interval_s`, for at most `deadline_s`."""

    def __init__(self, client: BulkUpdates, interval_s: float, deadline_s: float):
        self.client, self.interval_s, self.deadline_s = client, interval_s, deadline_s

    def until_finished(self, job: JobStatus) -> JobStatus:
        started = time.monotonic()
        while not job.finished:
            if time.monotonic() - started > self.deadline_s:
                raise SourceError(
                    f"{SYSTEM}: bulk update job {job.job_id} still {job.status} after "
                    f"{self.deadline_s:g} s; the next run asks for it again"
                )
            time.sleep(self.interval_s)
            job = self.client.job_status(job.job_id)
        return job


def write_back(
    scored: pd.DataFrame,
    ledger: Ledger,
    client: BulkUpdates,
    fields: SentimentFields,
    watch: JobWatch,
    log: Callable[[str], None],
) -> WriteBack:
    """Send the scores (`ticket_id`, `sentiment_label`, `sentiment_score`) that differ from what the
    support system took, in jobs of 100, keeping the ledger as it goes."""
    outcome = WriteBack()
    book = _LedgerBook(ledger)
    for job_id in book.pending_jobs():
        outcome.resumed_jobs += 1
        try:
            job = watch.until_finished(client.job_status(job_id))
        except NotFound:
            log(
                f"job {job_id} of an earlier run is forgotten by {SYSTEM}: its tickets are sent again"
            )
            book.forget(job_id)
            continue
        taken, refused = book.finish(job)
        outcome.written, outcome.refused = outcome.written + taken, outcome.refused + refused
    wanted = _wanted(scored)
    changed, outcome.unchanged, already_refused = book.differences(wanted)
    outcome.refused += already_refused
    for start in range(0, len(changed), MAX_TICKETS_PER_BULK_UPDATE):
        batch = changed.iloc[start : start + MAX_TICKETS_PER_BULK_UPDATE]
        updates = [ticket_update(t.ticket_id, t.label, t.score, fields) for t in batch.itertuples()]
        job = client.update_many(updates)
        book.submitted(batch, job.job_id)
        taken, refused = book.finish(watch.until_finished(job))
        outcome.written, outcome.refused = outcome.written + taken, outcome.refused + refused
    return outcome


def _wanted(scored: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": scored["ticket_id"].astype("int64"),
            "label": scored["sentiment_label"].astype(str),
            "score": scored["sentiment_score"].astype(float).round(3),
        }
    )


class _LedgerBook:
    """The ledger in memory, saved whole after every change of state."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        table = ledger.read()
        self.table = (
            pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in LEDGER_COLUMNS})
            if table is None
            else table[LEDGER_COLUMNS].astype(_DTYPES)
        )

    def pending_jobs(self) -> list[str]:
        pending = self.table[self.table["state"] == "pending"]
        return list(dict.fromkeys(pending["job_id"]))

    def differences(self, wanted: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
        """(tickets to send, how many are unchanged, how many were refused with these values)."""
        known = self.table.set_index("ticket_id")
        merged = wanted.join(known[["label", "score", "state"]], on="ticket_id", rsuffix="_known")
        same = (merged["label"] == merged["label_known"]) & (
            (merged["score"] - merged["score_known"]).abs() < 5e-4
        )
        written = same & (merged["state"] == "written")
        refused = same & (merged["state"] == "refused")
        send = wanted[~(written | refused).to_numpy()]
        return send.reset_index(drop=True), int(written.sum()), int(refused.sum())

    def submitted(self, batch: pd.DataFrame, job_id: str) -> None:
        rows = batch.assign(state="pending", job_id=job_id, reason="")
        self._replace(rows)

    def finish(self, job: JobStatus) -> tuple[int, int]:
        """Record a finished job's results: (tickets taken, tickets refused)."""
        results = {int(r["id"]): r for r in job.results if "id" in r}
        rows = self.table[self.table["job_id"] == job.job_id].copy()
        taken = rows["ticket_id"].map(lambda t: bool(results.get(t, {}).get("success")))
        rows["state"] = taken.map({True: "written", False: "refused"})
        rows["reason"] = [
            "" if ok else str(results.get(t, {}).get("errors") or f"job {job.status}")
            for t, ok in zip(rows["ticket_id"], taken, strict=True)
        ]
        if job.status != "completed":  # failed or killed: what it did not take is sent again
            self.forget(job.job_id)
            self._replace(rows[taken])
            return int(taken.sum()), 0
        self._replace(rows)
        return int(taken.sum()), int((~taken).sum())

    def forget(self, job_id: str) -> None:
        self.table = self.table[self.table["job_id"] != job_id]
        self.ledger.write(self.table)

    def _replace(self, rows: pd.DataFrame) -> None:
        others = self.table[~self.table["ticket_id"].isin(rows["ticket_id"])]
        self.table = pd.concat([others, rows[LEDGER_COLUMNS].astype(_DTYPES)], ignore_index=True)
        self.ledger.write(self.table)


_DTYPES = {
    "ticket_id": "int64",
    "label": "object",
    "score": "float64",
    "state": "object",
    "job_id": "object",
    "reason": "object",
}
