"""Warehouses built the way the platform builds them: days landed by the raw assets, then `dbt build`."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def build_warehouse(
    storage: PlatformStorage, world: World, first_day: str, last_day: str
) -> PlatformStorage:
    """Land [first_day, last_day] from `world` in one run and build every dbt model into `storage`."""
    with serving(world) as server:
        landed = materialize(
            raw_assets,
            resources=source_resources(server, storage),
            tags=range_tags(first_day, last_day),
        )
    assert landed.success
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
