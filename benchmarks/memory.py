"""Peak memory of this process and its descendants, sampled from /proc (Linux).

`getrusage` cannot answer this: its figure for children is the largest single finished child (the
simulator among them), and a process started by fork and exec can report its parent's peak as its own.
Sampling the resident sizes of the process tree, minus the processes we exclude (the simulator, which
stands in for the vendors' servers), gives the pipeline's peak: extraction, landing and dbt together.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    return parents


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(root: int, excluded: set[int]) -> float:
    """Resident MB of `root` and every descendant not under an excluded process."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in excluded:
            continue
        total += _rss_mb(pid)
        stack.extend(children.get(pid, []))
    return total


class PeakMemory:
    """Samples the process tree's resident memory every `interval_s` until stopped; keeps the peak."""

    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.excluded: set[int] = set()
        self.peak_mb = 0.0  # since the start, or since the last `phase_done`
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def phase_done(self) -> float:
        """The peak since the start or the last phase; a new phase begins (the overall peak is the
        largest of the phases')."""
        with self._lock:
            peak, self.peak_mb = self.peak_mb, 0.0
        return peak

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        root = os.getpid()
        while not self._stop.is_set():
            sample = tree_rss_mb(root, self.excluded)
            with self._lock:  # a sample taken before `phase_done` must not land after its reset
                self.peak_mb = max(self.peak_mb, sample)
            self._stop.wait(self.interval_s)
