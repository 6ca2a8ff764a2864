"""A code location for the pool test (`end_to_end/test_dagster_dev_on_postgres.py`): one job whose
steps each hold one of the platform's pools, the way its assets do (`pool=` and `@holds_its_pool`), and
write down when they held it and which other runs' steps were then waiting for it.

Two runs of it must be able to meet: its first step waits until a second run has started (the queue lets
two in at once), so the runs are known to overlap and their pooled steps to contend. Its steps run as the
platform's do (`unified_assets.lib.executor`): the four pooled steps, which could overlap, forked from a
server that preloaded this module.
"""

import json
import os
import time
from pathlib import Path

from dagster import Definitions, In, Nothing, OpExecutionContext, Out, job, op

from unified_assets.lib.executor import forked_steps_config, in_process_unless_steps_overlap
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PlatformStorage

RECORDS_VAR = "UNIFIED_ASSETS_TEST_POOL_RECORDS"
POOLS = ("warehouse", "accounting_api", "purchasing_api", "support_api")
MEETING_LIMIT_SECONDS = 120  # a safety net only: the wait ends when the second run arrives
WORK_SECONDS = 0.5  # what a step does while it holds its pool


def records() -> Path:
    return Path(os.environ[RECORDS_VAR])


@op(out=Out(Nothing))
def meet_another_run(context: OpExecutionContext) -> None:
    arrivals = records() / "arrivals"
    arrivals.mkdir(parents=True, exist_ok=True)
    (arrivals / context.run_id).touch()
    deadline = time.monotonic() + MEETING_LIMIT_SECONDS
    while len(list(arrivals.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("no second run started beside this one")
        time.sleep(0.05)


def other_runs_waiting(context: OpExecutionContext, pool: str) -> list[str]:
    """The runs whose step wants `pool` now, this step's own run aside. Called while this step holds the
    pool, so such a step waits: for Dagster's slot (no slot assigned yet) or, when Dagster's claim let it
    in beside this one (its race, `test_pool_locks.py`), for the pool's lock."""
    info = context.instance.event_log_storage.get_concurrency_info(pool)
    return [step.run_id for step in info.pending_steps if step.run_id != context.run_id]


def unserved_runs(context: OpExecutionContext, pool: str) -> set[str]:
    """Runs that arrived at the meeting, other than this one, with no record of holding `pool` yet."""
    arrived = {path.name for path in (records() / "arrivals").iterdir()} - {context.run_id}
    return {run for run in arrived if not (records() / f"{run}-{pool}.json").exists()}


def pooled_step(pool: str):
    @op(
        name=f"hold_{pool}",
        pool=pool,
        ins={"met": In(Nothing)},
        required_resource_keys={"storage"},
    )
    @holds_its_pool
    def hold(context: OpExecutionContext) -> None:
        held_from = time.monotonic_ns()  # one clock for every process of this host
        waiting = set(other_runs_waiting(context, pool))
        time.sleep(WORK_SECONDS)
        waiting |= set(other_runs_waiting(context, pool))  # a step that came while this one held
        # A run met beside this one that has not held this pool yet is about to ask for it (its step
        # process may still be starting): hold until it waits, so the contention is seen, not raced.
        deadline = time.monotonic() + MEETING_LIMIT_SECONDS
        while not waiting and unserved_runs(context, pool) and time.monotonic() < deadline:
            time.sleep(0.05)
            waiting |= set(other_runs_waiting(context, pool))
        held = {
            "run": context.run_id,
            "pool": pool,
            "from": held_from,
            "to": time.monotonic_ns(),
            "other_runs_waiting": sorted(waiting),  # what made this pool contended
        }
        (records() / f"{context.run_id}-{pool}.json").write_text(json.dumps(held))

    return hold


STEPS = [pooled_step(pool) for pool in POOLS]


@job(
    executor_def=in_process_unless_steps_overlap.configured(
        forked_steps_config([__name__], max_concurrent=4)
    )
)
def pooled_run() -> None:
    met = meet_another_run()
    for step in STEPS:
        step(met)


defs = Definitions(jobs=[pooled_run], resources={"storage": PlatformStorage.from_environment()})
