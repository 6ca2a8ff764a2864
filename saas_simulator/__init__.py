"""The embedded SaaS simulator: QuickBooks Online, Coupa and Zendesk over one simulated world.

One deterministic `World` (a function of seed and time) served over HTTP by `SimulatorServer` in
each vendor's real wire format, with rate limits and reproducible `FaultPlan`s. Plain Python: no
Dagster here. See docs/simulator.md.
"""

from saas_simulator.clock import SimClock
from saas_simulator.config import WorldConfig
from saas_simulator.credentials import SimCredentials
from saas_simulator.faults import FaultPlan, FaultSpec
from saas_simulator.ratelimit import RateLimit
from saas_simulator.server import SimulatorServer
from saas_simulator.world import SYSTEMS, World

__all__ = [
    "SYSTEMS",
    "FaultPlan",
    "FaultSpec",
    "RateLimit",
    "SimClock",
    "SimCredentials",
    "SimulatorServer",
    "World",
    "WorldConfig",
]
