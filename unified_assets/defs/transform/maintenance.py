"""Keeping the cluster profile's DuckLake lean. Every dbt build writes new, often small, Parquet files and a
new snapshot; once a week `warehouse_maintenance` merges adjacent small files, expires snapshots older than
a week and deletes the files only those snapshots referenced. The local warehouse is one DuckDB file that
DuckDB rewrites in place, so there the job says so and does nothing."""

from dagster import (
    Config,
    DefaultScheduleStatus,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL


class MaintenanceConfig(Config):
    keep_snapshots_days: int = Field(
        default=7,
        ge=0,
        description="Snapshots younger than this stay readable (time travel, a reader mid-query).",
    )


@op(pool=WAREHOUSE_POOL, tags={"kind": "ducklake"})
@holds_its_pool
def compact_warehouse(
    context: OpExecutionContext, storage: PlatformStorage, config: MaintenanceConfig
) -> None:
    """Merge small files, expire old snapshots and delete the files no snapshot reads any more."""
    if not storage.is_cluster:
        context.log.info("The local warehouse is one DuckDB file: nothing to merge or expire")
        return
    older_than = f"now() - interval '{int(config.keep_snapshots_days)} days'"
    with storage.ducklake().connect(read_only=False) as con:
        before = con.execute("select count(*) from ducklake_snapshots('warehouse')").fetchone()[0]
        con.execute("call ducklake_merge_adjacent_files('warehouse')")
        con.execute(f"call ducklake_expire_snapshots('warehouse', older_than => {older_than})")
        con.execute(f"call ducklake_cleanup_old_files('warehouse', older_than => {older_than})")
        after = con.execute("select count(*) from ducklake_snapshots('warehouse')").fetchone()[0]
    context.log.info(f"DuckLake snapshots: {before} before, {after} after")


@job(
    description=(
        "Weekly upkeep of the cluster profile's DuckLake warehouse: merges small files, expires "
        "snapshots older than a week, deletes the files they alone referenced."
    )
)
def warehouse_maintenance() -> None:
    compact_warehouse()


warehouse_maintenance_schedule = ScheduleDefinition(
    name="weekly_warehouse_maintenance",
    job=warehouse_maintenance,
    cron_schedule="0 4 * * 0",  # Sundays 04:00 UTC, after the daily pipeline
    default_status=DefaultScheduleStatus.RUNNING,
)
