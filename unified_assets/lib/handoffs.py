"""Tables one step hands to the next as Parquet files: written whole or not at all, read with a clear error
when the step that writes them has not run yet.

Steps run in separate processes and DuckDB lets one process write a file, so Python assets never hand
data to each other (or to dbt) in memory or through the warehouse: each table is one file under the
storage resource's hand-off folder, replaced atomically (`unified_assets.places.publish_parquet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import AssetKey, Failure

from unified_assets.confined_duckdb import confined_duckdb
from unified_assets.lib.keys import DEMAND_FORECAST, TICKET_SENTIMENT
from unified_assets.lib.storage import PlatformStorage
from unified_assets.places import publish_parquet

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Handoff:
    """One table handed between steps: the asset that writes it and the file's name."""

    writer: AssetKey
    name: str

    def path(self, storage: PlatformStorage) -> Path:
        return storage.handoff_path(self.name)

    def write(self, storage: PlatformStorage, table: pd.DataFrame) -> Path:
        path = self.path(storage)
        write_parquet_atomically(table, path)
        return path

    def read(self, storage: PlatformStorage) -> pd.DataFrame:
        return read_parquet(self.path(storage), produced_by=self.writer.to_user_string())


# Read by another domain (the forecast by replenishment; sentiment scores by dbt's `ml` source, whose
# external location names the same file).
DEMAND_FORECAST_TABLE = Handoff(DEMAND_FORECAST, "demand_forecast")
TICKET_SENTIMENT_TABLE = Handoff(TICKET_SENTIMENT, "ticket_sentiment")


def write_parquet_atomically(table: pd.DataFrame, path: Path) -> None:
    """Readers see the previous file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with confined_duckdb(allowed=[path.parent]) as con:
        con.register("handed_off", table)
        publish_parquet(con, "select * from handed_off", [], path)


def read_parquet(path: Path, produced_by: str) -> pd.DataFrame:
    if not path.exists():
        raise Failure(description=f"{path} does not exist yet: materialize {produced_by} first")
    with confined_duckdb(allowed=[path.parent]) as con:
        return con.execute("select * from read_parquet(?)", [str(path)]).df()
