"""Benchmark 4: how time and peak memory grow with the world (1x to 10x), extraction and dbt build.

Each size runs in a fresh Python process (`python -m benchmarks.scale`). Peak memory is the largest
resident size, sampled from /proc every 0.2 s, of that process and its descendants together (extraction,
landing, the Dagster run, dbt), not counting the simulator: it stands in for the vendors' servers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from benchmarks.extraction import HISTORY_START, Options, fresh_storage
from benchmarks.harness import Report
from benchmarks.memory import PeakMemory
from benchmarks.simulator import SimSettings, simulator_process


def measure_one(options: Options) -> dict[str, float]:
    """Extraction (concurrent) and dbt build of the whole history at one world size, in this process."""
    from benchmarks.comparison import build_models
    from benchmarks.extract import extract_concurrently_from

    settings = options.sim.at(options.clock_after_last_day)
    with (
        PeakMemory() as memory,
        simulator_process(settings) as sim,
        fresh_storage(options.scratch) as storage,
    ):
        memory.excluded.add(sim.pid)
        started = time.perf_counter()
        extract_s, runs = extract_concurrently_from(sim, storage, HISTORY_START, options.last_day)
        extraction_peak_mb = memory.phase_done()
        dbt_s = build_models(storage)
        total_s = time.perf_counter() - started
        dbt_peak_mb = memory.phase_done()
    return {
        "records": sum(run.records for run in runs),
        **{f"{run.table}.records": run.records for run in runs},
        "extraction_s": extract_s,
        "dbt_build_s": dbt_s,
        "total_s": total_s,
        "peak_rss_mb": max(extraction_peak_mb, dbt_peak_mb),
        "extraction_peak_rss_mb": extraction_peak_mb,
        "dbt_build_peak_rss_mb": dbt_peak_mb,
    }


def run_scale(options: Options, scales: list[float]) -> Report:
    """Each scale `repeat` times in its own process; time per record relative to the smallest scale."""
    report = Report("scale")
    report.facts["world"] = options.sim.world
    report.facts["page_latency_ms"] = options.sim.page_latency_ms
    for _ in range(options.repeat):
        for scale in scales:
            result = _in_fresh_process(options, scale)
            tag = f"x{scale:g}"
            report.facts[f"{tag}.records"] = result["records"]
            for name in ("extraction_s", "dbt_build_s", "total_s"):
                report.add(f"{tag}.{name}", "s", result[name])
            report.add(f"{tag}.records_per_s", "records/s", result["records"] / result["total_s"])
            for name in ("peak_rss_mb", "extraction_peak_rss_mb", "dbt_build_peak_rss_mb"):
                report.add(f"{tag}.{name}", "MB", result[name])
    return report


def _in_fresh_process(options: Options, scale: float) -> dict[str, float]:
    sim = options.sim
    command = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--world",
        sim.world,
        "--scale",
        str(scale),
    ]
    command += ["--latency-ms", str(sim.page_latency_ms), "--rate-limits", sim.rate_limits]
    command += ["--last-day", options.last_day, "--scratch", str(options.scratch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scale {scale} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--world", default="demo")
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limits", default="")
    parser.add_argument("--last-day", required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    args = parser.parse_args(argv)
    sim = SimSettings(
        args.world, args.scale, page_latency_ms=args.latency_ms, rate_limits=args.rate_limits
    )
    options = Options(sim, 1, args.scratch, args.last_day)
    result = measure_one(options)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
