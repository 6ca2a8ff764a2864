"""Figures from repeated runs: median, spread and count, printed as a table and written as JSON."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One measured quantity over several runs; a ratio is computed within each run, then summarised."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": statistics.median(self.values),
            "min": min(self.values),
            "max": max(self.values),
            "n": len(self.values),
            "values": self.values,
        }


@dataclass
class Report:
    """What one benchmark measured: figures, plain facts (sizes, settings) and targets checked."""

    name: str
    figures: dict[str, Figure] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, unit: str, value: float) -> None:
        self.figures.setdefault(name, Figure(name, unit)).values.append(float(value))

    def target(self, figure: str, at_most: float, description: str) -> None:
        """Record whether the median of `figure` is within `at_most` (the issue's targets)."""
        median = statistics.median(self.figures[figure].values)
        self.targets.append(
            {
                "figure": figure,
                "at_most": at_most,
                "median": median,
                "met": median <= at_most,
                "description": description,
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": {name: figure.summary() for name, figure in self.figures.items()},
            "facts": self.facts,
            "targets": self.targets,
        }


def machine() -> dict[str, Any]:
    """The machine the figures came from: CPU model and count, memory, Python, git commit."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = f"{len(names)} x {names[0]}" if names else cpu
    memory_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    return {
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "commit": _git_commit(),
        "load_average_at_end": list(_load_average()),
    }


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _load_average() -> tuple[float, ...]:
    try:
        import os

        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of the harness's own process (Linux reports KiB). Children are measured by
    sampling (benchmarks.memory): getrusage's figure for them is only the largest one, simulator included."""
    return {"self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def table(reports: list[Report]) -> str:
    """A plain-text table: one row per figure, median and min-max over n runs."""
    rows = [("benchmark", "figure", "median", "min - max", "n", "unit")]
    for report in reports:
        for name, figure in report.figures.items():
            s = figure.summary()
            spread = f"{fmt(s['min'])} - {fmt(s['max'])}"
            rows.append((report.name, name, fmt(s["median"]), spread, str(s["n"]), s["unit"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for report in reports:
        for target in report.targets:
            verdict = "MET" if target["met"] else "NOT MET"
            lines.append(
                f"target {report.name}.{target['figure']} <= {target['at_most']}: "
                f"{fmt(target['median'])} {verdict} ({target['description']})"
            )
    return "\n".join(lines)


def fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
