"""The simulator as a separate process, the way a remote API is: its CPU is not the extractor's.

Each benchmark starts its own (`python -m saas_simulator`) with an explicit clock, world size,
page latency and rate limits, and reads the base URLs it prints.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from saas_simulator.credentials import SimCredentials

# The vendors' documented limits (Zendesk's export: 10 requests a minute) would make a benchmark measure
# the limiter, not the pipeline: at the benchmark world's 300k tickets, 1,000 a page, 30 minutes of waiting.
# The harness therefore turns them off by default and says so in its output.
NO_RATE_LIMITS = "accounting=off,purchasing=off,support=off"


@dataclass(frozen=True)
class SimSettings:
    """What the simulator serves: which world, how big, at what simulated time, how slowly."""

    world: str = "demo"  # "demo" or "benchmark" (WorldConfig.demo / WorldConfig.benchmark)
    scale: float = 1.0
    clock: str = "frozen:2026-11-01T00:00:00Z"
    page_latency_ms: float = 0.0
    rate_limits: str = NO_RATE_LIMITS

    def at(self, clock: str) -> SimSettings:
        return SimSettings(self.world, self.scale, clock, self.page_latency_ms, self.rate_limits)

    def describe(self) -> dict[str, object]:
        return {
            "world": self.world,
            "scale": self.scale,
            "clock": self.clock,
            "page_latency_ms": self.page_latency_ms,
            "rate_limits": self.rate_limits or "vendor defaults",
        }


@dataclass
class RunningSimulator:
    base_urls: dict[str, str]
    token_url: str
    credentials: SimCredentials = field(default_factory=SimCredentials.demo)
    pid: int = 0


def _command(settings: SimSettings) -> list[str]:
    command = [sys.executable, "-m", "saas_simulator", "--port", "0"]
    command += ["--clock", settings.clock, "--scale", str(settings.scale)]
    command += ["--page-latency-ms", str(settings.page_latency_ms)]
    if settings.rate_limits:
        command += ["--rate-limits", settings.rate_limits]
    if settings.world == "benchmark":
        command.append("--benchmark")
    return command


@contextmanager
def simulator_process(settings: SimSettings, timeout_s: float = 600) -> Iterator[RunningSimulator]:
    """Start the simulator CLI, wait until it prints its URLs, stop it (SIGTERM) afterwards."""
    process = subprocess.Popen(
        _command(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield _read_urls(process, timeout_s)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_urls(process: subprocess.Popen, timeout_s: float) -> RunningSimulator:
    deadline = time.monotonic() + timeout_s
    urls: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        match = re.match(r"\s+(accounting|purchasing|support)\s+(http://\S+)", line)
        if match:
            urls[match.group(1)] = match.group(2)
        if len(urls) == 3:
            token_url = f"{urls['accounting']}/oauth2/v1/tokens/bearer"
            return RunningSimulator(urls, token_url, pid=process.pid)
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"the simulator did not start (exit code {process.poll()})")
