"""The embedded SaaS simulator: QuickBooks Online, Coupa and Zendesk over one simulated world.

One deterministic `World` (a function of seed and time) served over HTTP by `SimulatorServer` in
each vendor's real wire format, with rate limits and reproducible `FaultPlan`s. Plain Python: no
Dagster here. See docs/simulator.md.
"""

from unified_assets.simulator.clock import SimClock
from unified_assets.simulator.config import WorldConfig
from unified_assets.simulator.credentials import SimCredentials
from unified_assets.simulator.faults import FaultPlan, FaultSpec
from unified_assets.simulator.ratelimit import RateLimit
from unified_assets.simulator.server import SimulatorServer
from unified_assets.simulator.world import SYSTEMS, World

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
