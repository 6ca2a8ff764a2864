"""The same dbt project on the two homes of the warehouse: a local DuckDB file and a DuckLake (catalog in
Postgres, files in a bucket), built from the same lake files, give the same tables row for row; every dbt
test passes on both; an incremental build equals a full refresh on both; and a reader of the DuckLake sees a
table before or after a build, never half of it."""

from __future__ import annotations

import threading
from pathlib import Path

from dagster import materialize

from unified_assets.defs.transform.assets import dbt_models
from unified_assets.defs.transform.maintenance import warehouse_maintenance
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.resources import dbt_resources
from unified_assets_tests.support.services import S3Server, cluster_storage
from unified_assets_tests.support.simulators import frozen_world, serving
from unified_assets_tests.support.warehouse import (
    built_tables_hashes,
    land_days,
    rows_hash,
)

FIRST_DAYS = ("2026-03-02", "2026-03-03")
NEXT_DAY = "2026-03-04"
WATCHED = "marts.sku_demand_daily"
# The reader's pause between reads: it sees the table many times during a build (which takes seconds)
# without taking a core from the build it watches, in a suite where CPU is what the tests wait for.
READ_EVERY_S = 0.1


def build(storage: PlatformStorage, full_refresh: bool = False) -> None:
    config = {"ops": {"dbt_models": {"config": {"full_refresh": full_refresh}}}}
    assert materialize([dbt_models], resources=dbt_resources(storage), run_config=config).success


def copy_lake_to_bucket(local: PlatformStorage, cluster: PlatformStorage, s3: S3Server) -> None:
    """The local lake's files, byte for byte, at the same places in the cluster's bucket lake."""
    bucket, _, prefix = cluster.bucket_place("lake").url.removeprefix("s3://").partition("/")
    client = s3.client()
    for path in sorted(local.lake_dir.glob("raw/*/*/data.parquet")):
        key = f"{prefix}/{path.relative_to(local.lake_dir).as_posix()}"
        client.upload_file(str(path), bucket, key)


def local_hashes(storage: PlatformStorage) -> dict[str, tuple[int, int]]:
    import duckdb

    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        return built_tables_hashes(con)


def ducklake_hashes(storage: PlatformStorage) -> dict[str, tuple[int, int]]:
    with storage.ducklake().connect() as con:
        return built_tables_hashes(con)


class SnapshotReader(threading.Thread):
    """Reads one table of the DuckLake over and over until stopped, recording each (count, hash)."""

    def __init__(self, storage: PlatformStorage):
        super().__init__(daemon=True)
        self.storage = storage
        self.seen: list[tuple[int, int]] = []
        self.stop = threading.Event()
        self.reading = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.storage.ducklake().connect() as con:
                while not self.stop.is_set():
                    self.seen.append(rows_hash(con, WATCHED))
                    self.reading.set()
                    self.stop.wait(READ_EVERY_S)
        except BaseException as error:  # handed to the test, which fails on it
            self.error = error


def test_the_same_lake_builds_the_same_warehouse_on_a_file_and_on_ducklake_incrementally(
    demo_config, tmp_path: Path, postgres_database, s3_server
):
    """The DuckLake is built first from two days, then incrementally with a third, then from scratch
    again; each time it equals one build of the same lake files into a DuckDB file. (That an incremental
    build of the file equals its full refresh is `test_transform.py`'s own test.)"""
    local = PlatformStorage(data_dir=str(tmp_path / "local"))
    cluster = cluster_storage(tmp_path / "cluster", postgres_database, s3_server)
    world = frozen_world(demo_config)
    with serving(world) as server:
        land_days(server, local, *FIRST_DAYS)
        copy_lake_to_bucket(local, cluster, s3_server)
        build(cluster)
        first = ducklake_hashes(cluster)
        land_days(server, local, NEXT_DAY, NEXT_DAY)
    copy_lake_to_bucket(local, cluster, s3_server)
    build(local)  # the reference: every day in one build of the file
    whole = local_hashes(local)
    assert whole != first, "the new day must change the warehouse"
    assert {"staging", "intermediate", "marts"} <= {name.split(".")[0] for name in whole}

    reader = SnapshotReader(cluster)
    reader.start()
    reader.reading.wait(timeout=120)  # its first read is done: it reads while dbt builds
    build(cluster)  # incremental: the staging models append the new day's versions
    reader.stop.set()
    reader.join()
    assert ducklake_hashes(cluster) == whole

    assert reader.error is None, reader.error
    before, after = first[WATCHED], whole[WATCHED]
    assert reader.seen and set(reader.seen) <= {before, after}, "a read saw half a build"

    build(cluster, full_refresh=True)
    assert ducklake_hashes(cluster) == whole

    # The weekly upkeep, keeping no old snapshot: one snapshot left, and the same tables.
    upkeep = warehouse_maintenance.execute_in_process(
        resources={"storage": cluster},
        run_config={"ops": {"compact_warehouse": {"config": {"keep_snapshots_days": 0}}}},
    )
    assert upkeep.success
    with cluster.ducklake().connect() as con:
        assert con.execute("select count(*) from ducklake_snapshots('warehouse')").fetchone() == (
            1,
        )
    assert ducklake_hashes(cluster) == whole


def test_the_warehouse_upkeep_leaves_a_local_warehouse_alone(storage):
    result = warehouse_maintenance.execute_in_process(resources={"storage": storage})
    assert result.success
    written = sorted(path.name for path in storage.root.iterdir())
    assert written == ["locks"], (
        "the local profile has nothing to merge or expire (it held its pool)"
    )


def test_a_reader_is_told_when_the_ducklake_has_not_been_built(
    tmp_path, postgres_database, s3_server
):
    from dagster import Failure

    from unified_assets.lib.warehouse import open_warehouse

    storage = cluster_storage(tmp_path, postgres_database, s3_server)
    try:
        with open_warehouse(storage) as con:
            con.execute("select * from marts.unified_demand").fetchall()
    except Failure as failure:
        message = failure.description
    except Exception as error:  # whatever a reader meets is asserted on
        message = str(error)
    else:
        raise AssertionError("reading an unbuilt warehouse must fail")
    assert "unified_demand" in message or "materialize the transform group" in message
    assert postgres_database.password not in message
