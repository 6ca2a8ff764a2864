"""Benchmark 5's other side: our extraction and transform on the same data, side by side with naive."""

from __future__ import annotations

import time

from dagster import materialize

from benchmarks.extract import QUIET, extract_concurrently_from
from benchmarks.extraction import HISTORY_START, Options, fresh_storage
from benchmarks.harness import Report
from benchmarks.naive import run_naive
from benchmarks.simulator import simulator_process
from unified_assets.lib.storage import PlatformStorage


def build_models(storage: PlatformStorage) -> float:
    """`dbt build` of every model over the lake just landed in `storage` (the platform's transform
    step)."""
    from unified_assets.defs.transform.assets import dbt_models
    from unified_assets.lib.dbt_project import dbt_cli_resource

    started = time.perf_counter()
    resources = {"dbt": dbt_cli_resource(), "storage": storage}
    result = materialize([dbt_models], resources=resources, run_config=QUIET)
    if not result.success:
        raise RuntimeError("dbt build failed")
    return time.perf_counter() - started


def run_naive_comparison(options: Options) -> Report:
    """Per repetition: the naive read-and-merge, then our concurrent extraction and dbt build."""
    from unified_assets.lib.dbt_project import dbt_project

    dbt_project()  # reads the dbt manifest once, untimed

    report = Report("naive_vs_ours")
    report.facts["window"] = f"{HISTORY_START}..{options.last_day}"
    with simulator_process(options.sim.at(options.clock_after_last_day)) as sim:
        for rep in range(options.repeat):
            naive_s, sizes = run_naive(sim, HISTORY_START, options.last_day)
            with fresh_storage(options.scratch) as storage:
                extract_s, _ = extract_concurrently_from(
                    sim, storage, HISTORY_START, options.last_day
                )
                dbt_s = build_models(storage)
            report.facts.update({f"naive.{k}": v for k, v in sizes.items()})
            report.add("naive_wall_s", "s", naive_s)
            report.add("ours_extraction_s", "s", extract_s)
            report.add("ours_dbt_build_s", "s", dbt_s)
            report.add("ours_total_s", "s", extract_s + dbt_s)
            report.add("ours_over_naive", "ratio", (extract_s + dbt_s) / naive_s)
            report.add("ours_extraction_over_naive", "ratio", extract_s / naive_s)
            del rep
    return report
