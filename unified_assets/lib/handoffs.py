"""Tables one step hands to the next as Parquet files: written whole or not at all, read with a clear error
when the step that writes them has not run yet.

Steps run in separate processes (on several hosts in the `cluster` profile) and DuckDB lets one process
write a file, so Python assets never hand data to each other (or to dbt) in memory or through the
warehouse: each table is one file in the storage resource's hand-off place (a folder, or `<bucket>/ml`),
published whole (`unified_assets.places`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster import AssetKey, Failure

from unified_assets.lib.keys import CAPACITY_FORECAST, DEMAND_FORECAST, TICKET_SENTIMENT
from unified_assets.lib.storage import PlatformStorage
from unified_assets.places import Place

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Handoff:
    """One table handed between steps: the asset that writes it and the file's name."""

    writer: AssetKey
    name: str

    def location(self, storage: PlatformStorage) -> str:
        return storage.handoff_place().join(f"{self.name}.parquet")

    def write(self, storage: PlatformStorage, table: pd.DataFrame) -> str:
        location = self.location(storage)
        publish_table(storage.handoff_place(), table, location)
        return location

    def read(self, storage: PlatformStorage) -> pd.DataFrame:
        place = storage.handoff_place()
        return read_table(place, self.location(storage), produced_by=self.writer.to_user_string())


# Read by another domain (the forecast by replenishment; sentiment scores by dbt's `ml` source, whose
# external location names the same file).
DEMAND_FORECAST_TABLE = Handoff(DEMAND_FORECAST, "demand_forecast")
TICKET_SENTIMENT_TABLE = Handoff(TICKET_SENTIMENT, "ticket_sentiment")
# Read by the daily schedule, which sizes a heavy day's run by it.
CAPACITY_PLAN_TABLE = Handoff(CAPACITY_FORECAST, "capacity_plan")


def publish_table(place: Place, table: pd.DataFrame, location: str) -> None:
    """Readers see the previous file at `location` (one of `place`'s) or the new one, never half of one."""
    with place.connect() as con:
        con.register("handed_off", table)
        place.publish_parquet(con, "select * from handed_off", [], location)


def read_table(place: Place, location: str, produced_by: str) -> pd.DataFrame:
    if not place.exists(location):
        raise Failure(description=f"{location} does not exist yet: materialize {produced_by} first")
    with place.connect() as con:
        return con.execute("select * from read_parquet(?)", [location]).df()
