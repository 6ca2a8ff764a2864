"""Simulated worlds frozen in time, served on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from unified_assets.simulator.clock import SimClock
from unified_assets.simulator.config import WorldConfig
from unified_assets.simulator.faults import FaultPlan
from unified_assets.simulator.server import SimulatorServer
from unified_assets.simulator.world import World

FROZEN_AT = datetime.fromisoformat("2026-03-15T12:00:00+00:00")


def frozen_world(config: WorldConfig) -> World:
    return World(config, clock=SimClock.frozen(FROZEN_AT))


@contextmanager
def serving(
    world: World, faults: FaultPlan | None = None, **server_options
) -> Iterator[SimulatorServer]:
    server = SimulatorServer(world, faults=faults, host="127.0.0.1", port=0, **server_options)
    with server:
        yield server
