"""Benchmark 3: the whole graph, by step (not yet written)."""

from __future__ import annotations

from benchmarks.extraction import Options
from benchmarks.harness import Report


def run_end_to_end(options: Options) -> Report:
    raise NotImplementedError("end_to_end is not written yet")
