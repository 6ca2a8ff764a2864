"""Warehouses built the way the platform builds them: days landed by the raw assets, then `dbt build`."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
from dagster import materialize

from saas_simulator.world import World
from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.resources import dbt_resources, source_resources
from unified_assets_tests.support.simulators import serving


def range_tags(first_day: str, last_day: str) -> dict[str, str]:
    """The tags of a run over a range of daily partitions (one run, as a backfill launches it)."""
    return {
        "dagster/asset_partition_range_start": first_day,
        "dagster/asset_partition_range_end": last_day,
    }


def land_days(server, storage: PlatformStorage, first_day: str, last_day: str) -> None:
    """Land [first_day, last_day] from the simulator `server` in one run, as a backfill does."""
    landed = materialize(
        raw_assets,
        resources=source_resources(server, storage),
        tags=range_tags(first_day, last_day),
    )
    assert landed.success


def build_warehouse(
    storage: PlatformStorage, world: World, first_day: str, last_day: str
) -> PlatformStorage:
    """Land [first_day, last_day] from `world` in one run and build every dbt model into `storage`."""
    with serving(world) as server:
        land_days(server, storage, first_day, last_day)
    assert materialize([dbt_models], resources=dbt_resources(storage)).success
    return storage


def copy_of_warehouse(
    built: PlatformStorage, tmp_path: Path, with_lake: bool = False
) -> PlatformStorage:
    """A test's own copy of a built data folder (the lake too if the test changes it)."""
    directory = tmp_path / "data"
    ignore = None if with_lake else shutil.ignore_patterns("lake")
    shutil.copytree(built.root, directory, ignore=ignore)
    return PlatformStorage(data_dir=str(directory))


VOLATILE = (
    "extracted_at"  # any column whose name holds it: the wall clock of the run that wrote the row
)
# DuckDB sums doubles in parallel, in no fixed order, so an aggregate may differ in its last bits from one
# build to the next (3665.28 and 3665.2799999999997): doubles are compared to this many decimals.
DOUBLE_DECIMALS = 6


def rows_hash(con: duckdb.DuckDBPyConnection, source: str) -> tuple[int, int]:
    """Row count and an order-independent hash of the rows of `source` (a table or a table function)."""
    described = con.execute(f"describe select * from {source}").fetchall()
    kept = ", ".join(
        f'round("{name}", {DOUBLE_DECIMALS})' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
        for name, kind, *_ in described
        if VOLATILE not in name
    )
    count, digest = con.execute(
        f"select count(*), coalesce(sum(hash(row({kept}))::hugeint), 0) from {source}"
    ).fetchone()
    return count, int(digest)


def built_tables_hashes(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """`rows_hash` of every table dbt built in the connection's default database, by schema.table."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_catalog = current_database()"
    ).fetchall()
    return {
        f"{schema}.{table}": rows_hash(con, f'"{schema}"."{table}"') for schema, table in tables
    }
