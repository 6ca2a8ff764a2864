"""Shared worlds and servers for the simulator tests: small, frozen in time, on ephemeral ports."""

from __future__ import annotations

import pytest

from saas_simulator import SimClock, SimulatorServer, World, WorldConfig
from unified_assets_tests.support.simulators import NO_RATE_LIMITS, SIMULATOR_FROZEN_AT


@pytest.fixture(scope="session")
def world() -> World:
    """The demo world frozen in mid-April 2026; shared, so tests must not move its clock or touch
    it.
    """
    return World(WorldConfig.demo(), SimClock.frozen(SIMULATOR_FROZEN_AT))


@pytest.fixture(scope="session")
def server(world: World):
    with SimulatorServer(world, rate_limits=NO_RATE_LIMITS) as running:
        yield running


@pytest.fixture
def fresh_world() -> World:
    """A world of its own, for tests that move the clock or add versions."""
    return World(WorldConfig.demo(), SimClock.frozen(SIMULATOR_FROZEN_AT))
