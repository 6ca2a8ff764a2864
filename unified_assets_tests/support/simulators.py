"""Simulated worlds frozen in time, served on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from saas_simulator.clock import SimClock
from saas_simulator.config import WorldConfig
from saas_simulator.faults import FaultPlan
from saas_simulator.server import SimulatorServer
from saas_simulator.world import World

FROZEN_AT = datetime.fromisoformat("2026-03-15T12:00:00+00:00")
# The simulator's own tests read a world a month older, with every endpoint's rate limit off.
SIMULATOR_FROZEN_AT = datetime.fromisoformat("2026-04-15T12:00:00+00:00")
NO_RATE_LIMITS = {"accounting": None, "purchasing": None, "support": None}


def frozen_world(config: WorldConfig) -> World:
    return World(config, clock=SimClock.frozen(FROZEN_AT))


@contextmanager
def serving(
    world: World, faults: FaultPlan | None = None, **server_options
) -> Iterator[SimulatorServer]:
    server = SimulatorServer(world, faults=faults, host="127.0.0.1", port=0, **server_options)
    with server:
        yield server
