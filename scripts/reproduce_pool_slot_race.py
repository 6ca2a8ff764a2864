"""Reproduce Dagster's pool slot race: a pool limited to one slot admits several holders at once.

    .venv/bin/python scripts/reproduce_pool_slot_race.py                  # SQLite instance storage
    .venv/bin/python scripts/reproduce_pool_slot_race.py --postgres URL   # Postgres instance storage
    .venv/bin/python scripts/reproduce_pool_slot_race.py --with-fix       # the proposed fix applied

Eight processes claim the one slot of a pool through the instance's event log storage, as each step of a
run does (`claim_concurrency_slot`, then `free_concurrency_slot_for_step`), and count how many hold it at
once. Prints the most holders seen; 1 is correct. docs/reliability.md, *Pool slots*, explains the cause
(dagster/_core/storage/event_log/sql_event_log.py, `_claim_concurrency_slot`) and the fix.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path

POOL = "reproducer"
PROCESSES = 8
ROUNDS = 40


def instance_yaml(postgres_url: str | None) -> str:
    if postgres_url is None:
        return "telemetry:\n  enabled: false\n"
    return (
        "telemetry:\n  enabled: false\n"
        "storage:\n  postgres:\n    postgres_url:\n      env: REPRODUCER_POSTGRES_URL\n"
    )


def apply_fix() -> None:
    """The proposed fix: the UPDATE that takes the slot also requires it still to be free, so of two
    claims that selected the same free slot only one updates a row; the other sees rowcount 0, BLOCKED."""
    import sqlalchemy as db
    from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._core.storage.sqlalchemy_compat import db_select
    from dagster._utils.concurrency import ConcurrencySlotStatus

    def claim(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        with self.index_connection() as conn:
            result = conn.execute(
                db_select([ConcurrencySlotsTable.c.id])
                .select_from(ConcurrencySlotsTable)
                .where(
                    db.and_(
                        ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
                        ConcurrencySlotsTable.c.step_key == None,  # noqa: E711
                        ConcurrencySlotsTable.c.deleted == False,  # noqa: E712
                    )
                )
                .with_for_update(skip_locked=True)
                .limit(1)
            ).fetchone()
            if not result or not result[0]:
                return ConcurrencySlotStatus.BLOCKED
            updated = conn.execute(
                ConcurrencySlotsTable.update()
                .values(run_id=run_id, step_key=step_key)
                .where(
                    db.and_(
                        ConcurrencySlotsTable.c.id == result[0],
                        ConcurrencySlotsTable.c.step_key == None,  # noqa: E711 - the fix
                    )
                )
            ).rowcount
            return ConcurrencySlotStatus.CLAIMED if updated else ConcurrencySlotStatus.BLOCKED

    SqlEventLogStorage._claim_concurrency_slot = claim


def claim_and_release(home: str, start, holders, most, with_fix: bool) -> None:
    from dagster import DagsterInstance
    from dagster._core.instance import InstanceRef

    if with_fix:
        apply_fix()

    storage = DagsterInstance.from_ref(InstanceRef.from_dir(home)).event_log_storage
    run_id = str(uuid.uuid4())
    start.wait()
    for round_number in range(ROUNDS):
        step_key = f"step_{round_number}"
        while not storage.claim_concurrency_slot(POOL, run_id, step_key).is_claimed:
            time.sleep(0.001)
        with holders.get_lock():
            holders.value += 1
            most.value = max(most.value, holders.value)
        os.sched_yield()
        with holders.get_lock():
            holders.value -= 1
        storage.free_concurrency_slot_for_step(run_id, step_key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="use Postgres instance storage at URL")
    parser.add_argument("--with-fix", action="store_true", help="apply the proposed fix first")
    arguments = parser.parse_args()
    if arguments.postgres:
        os.environ["REPRODUCER_POSTGRES_URL"] = arguments.postgres

    from dagster import DagsterInstance

    with tempfile.TemporaryDirectory() as home:
        Path(home, "dagster.yaml").write_text(instance_yaml(arguments.postgres))
        with DagsterInstance.from_config(home) as instance:
            instance.event_log_storage.set_concurrency_slots(POOL, 1)
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(PROCESSES + 1)  # every racer has imported dagster and connected
        holders, most = context.Value("i", 0), context.Value("i", 0)
        racers = [
            context.Process(
                target=claim_and_release,
                args=(home, start, holders, most, arguments.with_fix),
            )
            for _ in range(PROCESSES)
        ]
        for racer in racers:
            racer.start()
        start.wait()
        for racer in racers:
            racer.join()
    storage = "Postgres" if arguments.postgres else "SQLite"
    fixed = ", fix applied" if arguments.with_fix else ""
    print(
        f"{storage} instance storage{fixed}, pool limit 1, {PROCESSES} processes x {ROUNDS} claims: "
        f"at most {most.value} held the slot at once (1 is correct)"
    )


if __name__ == "__main__":
    main()
