"""The embedded simulator's world, clock and faults, as the UNIFIED_ASSETS_SIM_* variables set them.

Every process that serves or watches the embedded simulator (each Dagster step, the sensors, the webhook
companion) builds its world from these, which is what makes them agree on every record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from saas_simulator.clock import SimClock
from saas_simulator.config import WorldConfig
from saas_simulator.faults import FaultPlan

SIM_SEED_VAR = "UNIFIED_ASSETS_SIM_SEED"
SIM_CLOCK_VAR = "UNIFIED_ASSETS_SIM_CLOCK"
SIM_FAULTS_VAR = "UNIFIED_ASSETS_SIM_FAULTS"
SIM_SCALE_VAR = "UNIFIED_ASSETS_SIM_SCALE"
SIM_PAGE_LATENCY_VAR = "UNIFIED_ASSETS_SIM_PAGE_LATENCY_MS"

T = TypeVar("T")


class SimSettingError(ValueError):
    """A UNIFIED_ASSETS_SIM_* variable holds a value the simulator cannot use; the message names it."""


def simulator_world_config(history_start: date | None = None) -> WorldConfig:
    """The demo world at the configured scale and seed; its history begins at `history_start` (the
    consumer's history window, which the simulator does not own) or at the demo's own start."""
    config = WorldConfig.demo(
        scale=_setting(SIM_SCALE_VAR, float, "1"), seed=_setting(SIM_SEED_VAR, int, "7")
    )
    return config if history_start is None else config.replace(history_start=history_start)


def simulator_clock() -> SimClock:
    return _setting(SIM_CLOCK_VAR, SimClock.parse, "real")


def simulator_faults() -> FaultPlan:
    return _setting(SIM_FAULTS_VAR, FaultPlan.parse, "")


def simulator_page_latency_s() -> float:
    """Seconds the simulator waits before answering each data request (the variable is in ms)."""
    return _setting(SIM_PAGE_LATENCY_VAR, parse_latency_ms, "0") / 1000.0


def parse_latency_ms(text: str) -> float:
    """Milliseconds as typed on the CLI or in the environment: a number, zero or more."""
    value = float(text)
    if not value >= 0:
        raise ValueError(f"page latency must be zero or more milliseconds, got {text!r}")
    return value


def _setting(name: str, parse: Callable[[str], T], default: str) -> T:
    raw = os.environ.get(name, "").strip() or default
    try:
        return parse(raw)
    except ValueError as error:
        raise SimSettingError(f"{name}={raw!r} is not valid: {error}") from None
