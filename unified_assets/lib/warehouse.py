"""Reading the warehouse dbt builds, from Python assets and sensors.

dbt is the warehouse's only writer, and DuckDB lets no reader in while it writes: every Python step that
reads the warehouse is in the `warehouse` pool, which the instance limits to one step at a time
(deploy/dagster.yaml), so it never meets dbt mid-build.
"""

from __future__ import annotations

import duckdb
from dagster import Failure

from unified_assets.confined_duckdb import confined_duckdb
from unified_assets.lib.storage import PlatformStorage

WAREHOUSE_POOL = "warehouse"


def open_warehouse(storage: PlatformStorage) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse, reaching no file outside the data folder, or a failure
    saying what to materialize when it has not been built yet."""
    path = storage.warehouse_path
    if not path.exists():
        raise Failure(
            description=f"the warehouse {path} has not been built yet: materialize the transform "
            "group (dbt) first"
        )
    return confined_duckdb(path, allowed=[storage.root], read_only=True)
