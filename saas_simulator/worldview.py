"""What a vendor module may read of the simulated world.

The world renders its records through the vendor modules (`quickbooks`, `coupa`, `zendesk`), so those
modules cannot import the world back without a cycle. They depend on this narrow view instead, which
`World` satisfies.
"""

from __future__ import annotations

from typing import Protocol

from saas_simulator.catalog import Catalog
from saas_simulator.config import WorldConfig
from saas_simulator.tables import SystemView
from saas_simulator.text import TextCache


class WorldView(Protocol):
    config: WorldConfig
    catalog: Catalog
    ticket_text_cache: TextCache

    def view(self, system: str, moment: float) -> SystemView:
        """The system's records and versions as of `moment` (a Unix timestamp)."""
        ...
