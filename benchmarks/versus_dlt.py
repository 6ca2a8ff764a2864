"""Benchmark 12: the platform's extraction against dlt on the same API, records and machine (issue 23).

One simulator process serves both sides the same world at the same frozen clock. Each side keeps one
worker process per source (spawned and warmed up by a one-day run before anything is timed, as
`benchmarks.extract.source_processes` does for the platform), and extracts the window 2026-01-01..last day
per source, then all three sources at once (one process per vendor on both sides). Each repetition runs
the pairs in the opposite order from the one before. After each pair, both sides must have landed the same
record ids, as many times each, per source; a mismatch fails the benchmark naming the ids.

- The project's side is the raw assets as the harness runs them (`benchmarks.extract.extract_source`:
  one Dagster run of the whole window), with the source resources' defaults (how many slices a past
  window is read in, and their pacing, are recorded with the figures).
- dlt's side is `benchmarks.dlt_peer`: `rest_api` to DuckDB, loaded as Parquet.
- Seconds run from a worker's start of the extraction to its end; all at once, from the first worker's
  start to the last one's end. Records per second are the rows landed (equal on both sides, or parity
  fails) over those seconds; the ratio is the project's records/s over dlt's.
- Peak memory is each worker's peak resident size during the measured run (Linux `VmHWM`, reset after
  the previous run through `/proc/self/clear_refs`; what stayed resident, imports included, counts);
  all at once, the three workers' peaks added up. Neither side starts processes of its own here (Dagster's
  in-process executor; dlt's normalizer runs in its process with one worker).
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Report

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from benchmarks.extraction import Options
    from benchmarks.simulator import RunningSimulator

SIDES = ("project", "dlt")
TABLES = ("invoices", "purchase_orders", "support_tickets")
# The sources compared (read when the benchmark starts): a smoke test narrows them to one, which spares
# it two worker processes a side.
MEASURED_TABLES = TABLES
TOGETHER = "together"
READY_TIMEOUT_S = 600.0  # start-up and warm-up of a worker on a busy machine
RUN_TIMEOUT_S = 3600.0  # one measured extraction (the benchmark world's 2M invoice lines included)
SHOWN_IDS = 10  # ids named in a parity failure, of each kind


class ParityError(AssertionError):
    """The two sides did not land the same records: the ratio would compare different work."""


@dataclass(frozen=True)
class WorkerRun:
    """One worker's measured extraction: when it started and ended (`time.monotonic`, one clock for
    every process of the machine) and its peak resident memory meanwhile."""

    table: str
    started: float
    ended: float
    peak_rss_mb: float
    peak_source: str


@dataclass(frozen=True)
class SideRun:
    """One side's run of one scenario: wall seconds, peak memory (added over its workers) and the ids
    it landed per table."""

    side: str
    seconds: float
    peak_rss_mb: float
    peak_source: str
    ids: dict[str, list[str]]

    @property
    def rows(self) -> int:
        return sum(len(ids) for ids in self.ids.values())


def run_versus_dlt(options: Options) -> Report:
    """Per repetition, each scenario (each source alone, then all three at once) on both sides, order
    alternated between repetitions, parity checked after every pair."""
    _require_dlt()
    from benchmarks.extraction import HISTORY_START
    from benchmarks.simulator import simulator_process

    measured = MEASURED_TABLES
    report = Report("versus_dlt")
    sim_settings = options.sim.at(options.clock_after_last_day)
    _describe(report, sim_settings.describe(), HISTORY_START, options.last_day)
    with (
        simulator_process(sim_settings) as sim,
        _worker_pools(sim, measured, options.last_day) as pools,
    ):
        for rep in range(options.repeat):
            order = SIDES if rep % 2 == 0 else SIDES[::-1]
            report.facts.setdefault("first_side_by_repetition", []).append(order[0])
            for scenario, tables in scenarios(measured):
                with tempfile.TemporaryDirectory(dir=_scratch(options), prefix="pair-") as pair:
                    runs = {
                        side: pools[side].run(tables, HISTORY_START, options.last_day, Path(pair))
                        for side in order
                    }
                    check_parity(scenario, runs["project"], runs["dlt"])
                _add_pair(report, scenario, runs["project"], runs["dlt"])
                report.facts["pairs_with_parity"] = report.facts.get("pairs_with_parity", 0) + 1
    return report


def scenarios(tables: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """Each source alone, then (given more than one) all of them at once."""
    alone = [(table, (table,)) for table in tables]
    return [*alone, (TOGETHER, tables)] if len(tables) > 1 else alone


def _require_dlt() -> None:
    """dlt is an optional extra: say how to get it rather than fail in a worker's traceback."""
    if importlib.util.find_spec("dlt") is None:
        raise RuntimeError(
            "the versus_dlt benchmark needs dlt: install the `bench` extra "
            "(`.venv/bin/python -m uv pip install -e '.[bench]'`; the `dev` extra includes it)"
        )


def _describe(report: Report, simulator: dict[str, Any], first_day: str, last_day: str) -> None:
    """What was compared, in the JSON beside the figures: a ratio means little without its setups."""
    from importlib.metadata import version

    report.facts["simulator"] = simulator
    report.facts["window"] = f"{first_day}..{last_day}"
    report.facts["dlt_version"] = version("dlt")
    report.facts["dlt_setup"] = "rest_api to duckdb, loader_file_format=parquet"
    report.facts["project_setup"] = "raw assets, the source resources' defaults"
    report.facts["project_window_slices"] = _default_slices()
    report.facts["ratio"] = "project records/s over dlt records/s (issue 23 asks for >= 2)"


def _default_slices() -> dict[str, str]:
    """How each source resource reads a past window by default (slices, and the pace they share): what
    concurrency the project's side had, which dlt's sequential walks do not."""
    from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi

    described = {}
    for table, api in zip(TABLES, (AccountingApi, PurchasingApi, SupportApi), strict=True):
        fields = api.model_fields
        slices = fields["window_slices"].default
        pace = fields["slices_max_requests"].default if "slices_max_requests" in fields else 0
        per_s = fields["slices_per_seconds"].default if "slices_per_seconds" in fields else 1.0
        paced = f", at most {pace} requests per {per_s:g} s" if slices > 1 and pace else ""
        described[table] = f"{slices} slice{'s' if slices > 1 else ''}{paced}"
    return described


def _scratch(options: Options) -> Path:
    """Where each pair lands (removed after its parity check): the harness's scratch folder."""
    options.scratch.mkdir(parents=True, exist_ok=True)
    return options.scratch


def _add_pair(report: Report, scenario: str, project: SideRun, dlt: SideRun) -> None:
    """A pair's figures; ratios within the pair, summarised over repetitions by the harness."""
    for run in (project, dlt):
        report.add(f"{scenario}.{run.side}_s", "s", run.seconds)
        report.add(f"{scenario}.{run.side}_records_per_s", "records/s", run.rows / run.seconds)
        report.add(f"{scenario}.{run.side}_peak_rss_mb", "MB", run.peak_rss_mb)
    report.add(f"{scenario}.project_over_dlt", "ratio", dlt.seconds / project.seconds)
    report.add(
        f"{scenario}.project_memory_over_dlt", "ratio", project.peak_rss_mb / dlt.peak_rss_mb
    )
    for table, ids in project.ids.items():
        report.facts[f"{table}.records"] = len(ids)
    report.facts["peak_rss_from"] = project.peak_source


# ------------------------------------------------------------------------------------------ parity


def check_parity(scenario: str, project: SideRun, dlt: SideRun) -> None:
    """Both sides landed the same ids, each as many times, for every table of the scenario; else a
    ParityError naming the table, the counts and the first ids only one side has."""
    problems = []
    for table in project.ids:
        ours, theirs = Counter(project.ids[table]), Counter(dlt.ids[table])
        if ours == theirs:
            continue
        only_ours = sorted(ours - theirs, key=_id_order)
        only_theirs = sorted(theirs - ours, key=_id_order)
        problems.append(
            f"{table}: the project landed {sum(ours.values())} rows, dlt {sum(theirs.values())}; "
            f"only (or more often) in the project's: {_shown(only_ours)}; "
            f"only (or more often) in dlt's: {_shown(only_theirs)}"
        )
    if problems:
        raise ParityError(
            f"{scenario}: the two sides landed different records. " + " ".join(problems)
        )


def _id_order(value: str) -> tuple[int, str]:
    """Numeric ids in numeric order (QuickBooks sends its ids as text), so a message reads 9 before 10."""
    return (int(value), "") if value.isdigit() else (0, value)


def _shown(ids: list[str]) -> str:
    """The first ids and how many more: a window's worth of ids would bury the message."""
    if not ids:
        return "none"
    more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more


def landed_ids(side: str, table: str, data_dir: Path) -> list[str]:
    """The record ids `side` landed for `table` under `data_dir`, one per row, as text."""
    import duckdb

    if side == "project":
        from unified_assets.lib.storage import PlatformStorage

        files = PlatformStorage(data_dir=str(data_dir)).lake().partition_files(table)
        database, query, parameters = None, "select id::varchar from read_parquet(?)", [files]
        if not files:
            return []
    else:
        from benchmarks.dlt_peer import DATASET, database_path

        database = database_path(data_dir, table)
        query, parameters = f"select id::varchar from {DATASET}.{table}", []
        if not database.exists():
            return []
    with duckdb.connect(str(database) if database else ":memory:", read_only=bool(database)) as con:
        # No progress bar: DuckDB draws one on stdout for a query past two seconds (a window's day
        # files on a busy machine), and the benchmark's output is its table.
        con.execute("set enable_progress_bar = false")
        return [row[0] for row in con.execute(query, parameters).fetchall()]


# ----------------------------------------------------------------------------------------- workers


class WorkerPool:
    """One warmed-up worker process per source for one side; runs a scenario's sources at once."""

    def __init__(self, side: str, connections: dict[str, Connection], processes: dict[str, Any]):
        self.side = side
        self.connections = connections
        self.processes = processes

    def run(
        self, tables: tuple[str, ...], first_day: str, last_day: str, pair_dir: Path
    ) -> SideRun:
        """`tables` extracted at once into `pair_dir/<side>`, one worker each; the side's run."""
        data_dir = pair_dir / self.side
        data_dir.mkdir()
        for table in tables:
            self.connections[table].send((first_day, last_day, str(data_dir)))
        runs = [self._answer(table, RUN_TIMEOUT_S) for table in tables]
        return SideRun(
            self.side,
            seconds=max(run.ended for run in runs) - min(run.started for run in runs),
            peak_rss_mb=sum(run.peak_rss_mb for run in runs),
            peak_source=",".join(sorted({run.peak_source for run in runs})),
            ids={table: landed_ids(self.side, table, data_dir) for table in tables},
        )

    def wait_ready(self) -> None:
        """Every worker has started and run its warm-up: nothing timed pays for either."""
        for table in self.connections:
            self._answer(table, READY_TIMEOUT_S)

    def _answer(self, table: str, timeout_s: float) -> Any:
        """The worker's next message; its traceback as an error if it failed, or if it died or went
        silent for `timeout_s`."""
        connection, process = self.connections[table], self.processes[table]
        deadline = time.monotonic() + timeout_s
        while not connection.poll(1.0):
            if not process.is_alive():
                raise RuntimeError(
                    f"the {self.side} worker for {table} died (exit code {process.exitcode})"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {self.side} worker for {table} sent nothing in {timeout_s} s"
                )
        kind, payload = connection.recv()
        if kind == "failed":
            raise RuntimeError(f"the {self.side} worker for {table} failed:\n{payload}")
        return payload

    def stop(self) -> None:
        """Ask each worker to stop (all at once: their interpreters shut down side by side)."""
        for connection in self.connections.values():
            with contextlib.suppress(OSError):  # the worker is gone already
                connection.send(None)

    def join(self) -> None:
        """Wait for the workers; end the ones still there after 30 s (ours only, by handle)."""
        for process in self.processes.values():
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()


@contextmanager
def _worker_pools(
    sim: RunningSimulator, tables: tuple[str, ...], warm_up_day: str
) -> Iterator[dict[str, WorkerPool]]:
    """Both sides' workers, one per source of `tables`, all started at once (their start-ups overlap),
    each warmed up by a one-day run of its source; stopped on exit. Spawned, not forked: this process
    holds threads."""
    from benchmarks.dlt_peer import VendorAccess

    context = multiprocessing.get_context("spawn")
    targets = {"project": sim, "dlt": VendorAccess.of(sim)}
    pools = {side: WorkerPool(side, {}, {}) for side in SIDES}
    try:
        for side, pool in pools.items():
            for table in tables:
                ours, theirs = context.Pipe()
                pool.connections[table] = ours
                pool.processes[table] = context.Process(
                    target=serve,
                    args=(side, table, targets[side], warm_up_day, theirs),
                    name=f"versus-dlt-{side}-{table}",
                    daemon=True,
                )
                pool.processes[table].start()
        for pool in pools.values():
            pool.wait_ready()
        yield pools
    finally:
        for pool in pools.values():
            pool.stop()
        for pool in pools.values():
            pool.join()


def serve(side: str, table: str, target: Any, warm_up_day: str, connection: Connection) -> None:
    """A worker: warm up, say so, then extract each window it is sent until it is sent None. Imports
    only its own side's code, so its memory is that side's."""
    try:
        extract = EXTRACTORS[side]
        with tempfile.TemporaryDirectory(prefix=f"versus-dlt-warm-up-{side}-") as warm_up:
            extract(table, target, warm_up_day, warm_up_day, Path(warm_up))
        connection.send(("ready", None))
        while (command := connection.recv()) is not None:
            first_day, last_day, data_dir = command
            peak_source = reset_peak_rss()
            started = time.monotonic()
            extract(table, target, first_day, last_day, Path(data_dir))
            ended = time.monotonic()
            run = WorkerRun(table, started, ended, peak_rss_mb(peak_source), peak_source)
            connection.send(("done", run))
    except BaseException:
        connection.send(("failed", traceback.format_exc()))


def _project_extract(
    table: str, sim: RunningSimulator, first_day: str, last_day: str, data_dir: Path
) -> None:
    """The raw asset of `table` over the days, as the harness runs it, landing under `data_dir`."""
    from benchmarks.extract import extract_source, source_resources
    from unified_assets.defs.ingestion.assets import RAW_SOURCES
    from unified_assets.lib.storage import PlatformStorage

    [source] = [source for source in RAW_SOURCES if source.table == table]
    storage = PlatformStorage(data_dir=str(data_dir))
    extract_source(source, source_resources(sim, storage), first_day, last_day)


def _dlt_extract(table: str, access: Any, first_day: str, last_day: str, data_dir: Path) -> None:
    """dlt's pipeline for `table` over the same days, [first day 00:00Z, the day after the last)."""
    from benchmarks.dlt_peer import run_pipeline

    start = datetime.combine(date.fromisoformat(first_day), datetime.min.time(), UTC)
    end = datetime.combine(date.fromisoformat(last_day), datetime.min.time(), UTC)
    run_pipeline(table, access, start, end + timedelta(days=1), data_dir)


EXTRACTORS: dict[str, Callable[[str, Any, str, str, Path], None]] = {
    "project": _project_extract,
    "dlt": _dlt_extract,
}


# ------------------------------------------------------------------------------------------ memory

PROC_SELF = Path("/proc/self")


def reset_peak_rss() -> str:
    """Start a new peak: Linux resets `VmHWM` to the current resident size when 5 is written to
    `clear_refs`. Where that is refused, the peak is the process's since its start (`ru_maxrss`)."""
    try:
        (PROC_SELF / "clear_refs").write_text("5")
        return "VmHWM"
    except OSError:
        return "ru_maxrss"


def peak_rss_mb(source: str) -> float:
    """This process's peak resident MB, from `VmHWM` or `ru_maxrss` (see `reset_peak_rss`)."""
    if source == "VmHWM":
        for line in (PROC_SELF / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
