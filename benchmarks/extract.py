"""Run the platform's own raw extraction (the raw assets' code: HTTP paging, redaction, landing to the
lake) for a range of days, one source after another or all three at once: in threads of this process, or
each source in a process of its own, as Dagster's multiprocess executor runs the three raw assets."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, materialize

from benchmarks.simulator import RunningSimulator
from unified_assets.defs.ingestion.assets import RAW_SOURCES, RawSource, build_raw_asset
from unified_assets.lib.keys import run_total_tag
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.resources import resources_pointed_at

# Benchmarks should not wait 20 s for a Dagster retry; the HTTP layer keeps its own retries.
_ASSETS = {source.table: build_raw_asset(source, retry_policy=None) for source in RAW_SOURCES}


# Rate limits are off in the harness, so purchase orders are read as a deployment whose Coupa limit allows
# reads them: each window in four slices at once (PurchasingApi.window_slices; 1 by default).
SLICED_PURCHASE_ORDERS = {"purchasing_api": {"window_slices": 4}}

# Dagster's console logger writes every page's log line at DEBUG; a benchmark should not time its terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass(frozen=True)
class SourceRun:
    table: str
    seconds: float
    records: int
    pages: int
    rows_landed: int


def source_resources(
    sim: RunningSimulator,
    storage: PlatformStorage,
    per_resource: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a raw extract needs: the storage it lands into and the source resources pointed at `sim`."""
    return {"storage": storage, **resources_pointed_at(sim, storage, per_resource=per_resource)}


def extract_source(
    source: RawSource, resources: dict[str, Any], first_day: str, last_day: str
) -> SourceRun:
    """One source's extraction of [first_day, last_day], timed, with the counts it reported."""
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = materialize(
            [_ASSETS[source.table]],
            instance=instance,
            resources={
                "storage": resources["storage"],
                source.resource_key: resources[source.resource_key],
            },
            run_config=QUIET,
            tags={
                "dagster/asset_partition_range_start": first_day,
                "dagster/asset_partition_range_end": last_day,
            },
        )
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"extracting {source.table} failed")
        totals = instance.get_run_by_id(result.run_id).tags
    return SourceRun(
        source.table,
        seconds,
        records=int(totals[run_total_tag(source.table, "records_received")]),
        pages=int(totals[run_total_tag(source.table, "pages")]),
        rows_landed=int(totals[run_total_tag(source.table, "rows_landed")]),
    )


def extract_all(
    resources: dict[str, Any], first_day: str, last_day: str, concurrent: bool
) -> tuple[float, list[SourceRun]]:
    """Wall time and per-source runs of all three sources, in threads or one after another."""
    started = time.perf_counter()
    if concurrent:
        with ThreadPoolExecutor(len(RAW_SOURCES)) as pool:
            runs = list(
                pool.map(lambda s: extract_source(s, resources, first_day, last_day), RAW_SOURCES)
            )
    else:
        runs = [extract_source(s, resources, first_day, last_day) for s in RAW_SOURCES]
    return time.perf_counter() - started, runs


def extract_concurrently_from(
    sim: RunningSimulator, storage: PlatformStorage, first_day: str, last_day: str
) -> tuple[float, list[SourceRun]]:
    """The three sources at once from `sim` into `storage`, as the harness reads them (purchase orders in
    slices)."""
    resources = source_resources(sim, storage, per_resource=SLICED_PURCHASE_ORDERS)
    return extract_all(resources, first_day, last_day, concurrent=True)


@contextmanager
def source_processes(sim: RunningSimulator, warm_up_day: str) -> Iterator[ProcessPoolExecutor]:
    """One worker process per source, each started and warmed up (imports, a first small run) before it
    is timed: neither the sequential nor the concurrent figure pays a process's start-up (benchmark 3
    measures that). Spawned, not forked: this process may hold threads."""
    context = multiprocessing.get_context("spawn")
    workers = len(RAW_SOURCES)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_warm_up, initargs=(sim, warm_up_day)
    ) as pool:
        # Submitted while none is idle, each task starts a worker of its own.
        for started in [pool.submit(time.sleep, 0.5) for _ in range(workers)]:
            started.result()
        yield pool


def _warm_up(sim: RunningSimulator, day: str) -> None:
    with tempfile.TemporaryDirectory(prefix="warm-up-") as data_dir:
        storage = PlatformStorage(data_dir=data_dir)
        extract_all(source_resources(sim, storage), day, day, concurrent=False)


def extract_all_in_processes(
    pool: ProcessPoolExecutor,
    sim: RunningSimulator,
    data_dir: str,
    first_day: str,
    last_day: str,
    concurrent: bool,
) -> tuple[float, list[SourceRun]]:
    """Wall time and per-source runs of all three sources, each in a worker process, all at once or one
    after another."""
    started = time.perf_counter()
    arguments = [(source.table, sim, data_dir, first_day, last_day) for source in RAW_SOURCES]
    if concurrent:
        futures = [pool.submit(_extract_in_worker, *args) for args in arguments]
        runs = [future.result() for future in futures]
    else:
        runs = [pool.submit(_extract_in_worker, *args).result() for args in arguments]
    return time.perf_counter() - started, runs


def _extract_in_worker(
    table: str, sim: RunningSimulator, data_dir: str, first_day: str, last_day: str
) -> SourceRun:
    [source] = [source for source in RAW_SOURCES if source.table == table]
    storage = PlatformStorage(data_dir=data_dir)
    resources = source_resources(sim, storage, per_resource=SLICED_PURCHASE_ORDERS)
    return extract_source(source, resources, first_day, last_day)
