"""Reading the warehouse dbt builds, from Python assets and sensors.

Locally the warehouse is one DuckDB file: dbt is its only writer, and DuckDB lets no reader in while it
writes, so every Python step that reads it is in the `warehouse` pool (one step at a time), and never meets
dbt mid-build. In the cluster profile it is a DuckLake (unified_assets/ducklake.py): a reader attaches it
read-only and sees one committed snapshot whatever dbt is doing; the pool stays, so the two profiles run
the same steps the same way.
"""

from __future__ import annotations

import duckdb
from dagster import Failure

from unified_assets.confined_duckdb import confined_duckdb
from unified_assets.ducklake import WarehouseUnavailable
from unified_assets.lib.storage import PlatformStorage

WAREHOUSE_POOL = "warehouse"


def open_warehouse(storage: PlatformStorage) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse, reaching no file outside the data folder, or a failure
    saying what to materialize when it has not been built yet."""
    if storage.is_cluster:
        try:
            return storage.ducklake().connect(read_only=True)
        except WarehouseUnavailable as error:
            raise Failure(
                description=f"{error}: materialize the transform group (dbt) first, or check PGHOST..."
            ) from None
    path = storage.warehouse_path
    if not path.exists():
        raise Failure(
            description=f"the warehouse {path} has not been built yet: materialize the transform "
            "group (dbt) first"
        )
    return confined_duckdb(path, allowed=[storage.root], read_only=True)
