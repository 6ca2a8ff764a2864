"""Run the platform's own raw extraction (the raw assets' code: HTTP paging, redaction, landing to the
lake) for a range of days, one source after another or all three at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dagster import materialize

from benchmarks.simulator import RunningSimulator
from unified_assets.assets.raw import RAW_SOURCES, RawSource, build_raw_asset
from unified_assets.resources import resources_pointed_at

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


def extract_source(
    source: RawSource, resources: dict[str, Any], first_day: str, last_day: str
) -> SourceRun:
    """One source's extraction of [first_day, last_day], timed, with the counts it reported."""
    started = time.perf_counter()
    result = materialize(
        [_ASSETS[source.table]],
        resources={source.resource_key: resources[source.resource_key]},
        run_config=QUIET,
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day,
        },
    )
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"extracting {source.table} failed")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    return SourceRun(
        source.table,
        seconds,
        records=int(_value(metadata.get("records_received"))),
        pages=int(_value(metadata.get("pages"))),
        rows_landed=int(_value(metadata.get("rows_in_run"))),
    )


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry) or 0


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
    sim: RunningSimulator, first_day: str, last_day: str
) -> tuple[float, list[SourceRun]]:
    """The three sources at once from `sim`, as the harness reads them (purchase orders in slices)."""
    resources = resources_pointed_at(sim, per_resource=SLICED_PURCHASE_ORDERS)
    return extract_all(resources, first_day, last_day, concurrent=True)
