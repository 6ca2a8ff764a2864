"""Runs whose worker process died: found, marked failed, and their pool slots freed, with nobody at hand.

A run killed outright (SIGKILL, the out-of-memory killer, a laptop that crashed while asleep) never reports
its end: it stays STARTED, and the pool slots its steps claimed (`warehouse`, each vendor's) stay claimed,
so every later run that needs those pools waits forever. Dagster's run monitoring marks such runs failed
when the run launcher can say its worker is gone, and then frees the slots of runs that ended
(`free_slots_after_run_end_seconds`); but the local `DefaultRunLauncher` cannot say (it does not support
worker health checks), so on a laptop neither happens.

Every run's RUN_START event records the process id of the worker that started it. On one machine that is
enough to tell: the run is dead when no process has that id any more, when the process with it is a
zombie, or when it started after the run did (the id was reused). `LocalRunLauncher` answers run
monitoring's health check that way under `dagster dev` (deploy/dagster.yaml), and `free_dead_runs` does the
whole job once for an instance no daemon watches. Every run of the platform does it before its first
step (`free_dead_runs_before_a_run`, from `lib/executor.py`), so a re-run after a crash frees what the
dead run held by itself, from the CLI too; by hand, for DAGSTER_HOME's instance:

    .venv/bin/python -m unified_assets.lib.run_workers

Process ids are only meaningful on the host that ran the worker: this is for the local profile, where the
daemon, the CLI and every run share one machine. The cluster profile's Kubernetes launcher checks its pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES

# The process's start time and the run's RUN_START timestamp come from different clocks' roundings.
START_TIME_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RunWorker:
    """The process that started a run: its id and when the run started (epoch seconds)."""

    pid: int
    run_started_at: float

    def is_alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return process.create_time() <= self.run_started_at + START_TIME_SLACK_SECONDS
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True  # someone else's process holds the id: not ours to judge, assume alive


def run_worker(instance: DagsterInstance, run_id: str) -> RunWorker | None:
    """The worker that started the run, from its RUN_START event; None before it started."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.RUN_START, limit=1
    ).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event else None
    return RunWorker(pid=pid, run_started_at=entry.timestamp) if pid else None


def worker_health(instance: DagsterInstance, run: DagsterRun) -> CheckRunHealthResult:
    """RUNNING while the run's worker process lives (or is not known yet), FAILED once it is gone."""
    worker = run_worker(instance, run.run_id)
    if worker is None or worker.is_alive():
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    return CheckRunHealthResult(
        WorkerStatus.FAILED,
        f"the run's worker process (pid {worker.pid}) is gone: killed, or its machine restarted",
    )


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher, with the worker health check run monitoring needs to fail dead runs."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return worker_health(self._instance, run)


@dataclass(frozen=True)
class FreedRun:
    """A run whose pool slots (claimed, or waited for) were released."""

    run_id: str
    job_name: str
    marked_failed: bool  # its worker was gone and it still said STARTED


def free_dead_runs(instance: DagsterInstance) -> list[FreedRun]:
    """Mark every STARTED run whose worker is gone failed, and release the pool slots of those runs and
    of any run that ended still holding some: what run monitoring and its slot cleanup do under
    `dagster dev`, at once."""
    failed = set()
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        health = worker_health(instance, record.dagster_run)
        if health.status == WorkerStatus.FAILED:
            instance.report_run_failed(record.dagster_run, f"Marked failed: {health.msg}.")
            failed.add(record.dagster_run.run_id)
    holding = instance.event_log_storage.get_concurrency_run_ids()
    if not holding:
        return []
    ended = instance.get_run_records(RunsFilter(run_ids=list(holding), statuses=FINISHED_STATUSES))
    freed = []
    for record in ended:
        run = record.dagster_run
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        freed.append(FreedRun(run.run_id, run.job_name, run.run_id in failed))
    return freed


def free_dead_runs_before_a_run(instance: DagsterInstance, log: Any) -> list[FreedRun]:
    """What a starting run does first (the platform's executor calls it): free what dead runs hold,
    so a re-run after a crash needs neither a daemon nor a person. Only on an instance whose runs all
    run on this machine (the local launcher's); elsewhere a process id says nothing. Each freed run is
    a warning in the starting run's log."""
    if not _launches_runs_locally(instance):
        return []
    freed = free_dead_runs(instance)
    for run in freed:
        log.warning(f"run {run.run_id} ({run.job_name}) {_what_happened(run)}")
    return freed


def _launches_runs_locally(instance: DagsterInstance) -> bool:
    """Whether the instance's configured launcher is `LocalRunLauncher`, read from its configuration:
    building the launcher in a run worker is not free, and not always possible (the Kubernetes
    launcher wants settings only its daemon has)."""
    launcher = instance.get_ref().run_launcher_data
    return (
        launcher is not None
        and launcher.module_name == LocalRunLauncher.__module__
        and launcher.class_name == LocalRunLauncher.__name__
    )


def _what_happened(run: FreedRun) -> str:
    if run.marked_failed:
        return "died without ending (its worker is gone): marked failed, its pool slots released"
    return "ended still holding pool slots: released"


def main() -> int:
    instance = DagsterInstance.get()
    freed = free_dead_runs(instance)
    for run in freed:
        print(f"run {run.run_id} ({run.job_name}) {_what_happened(run)}")
    if not freed:
        print("no ended or dead run holds a pool slot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
