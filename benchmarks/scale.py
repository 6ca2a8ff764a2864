"""Benchmark 4: time and memory from 1x to 10x the world (not yet written)."""

from __future__ import annotations

from benchmarks.extraction import Options
from benchmarks.harness import Report


def run_scale(options: Options, scales: list[float]) -> Report:
    raise NotImplementedError("scale is not written yet")
