"""A pooled step holds its pool's lock while it works, plain or generator, on the backend the storage
resource names."""

import fcntl
import os

import pytest
from dagster import AssetExecutionContext, Output, asset, materialize

from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PROFILE_VAR, PlatformStorage
from unified_assets.pool_locks import FileLocks, PostgresAdvisoryLocks
from unified_assets.settings import SettingError


def lock_is_taken(storage: PlatformStorage, pool: str) -> bool:
    """Whether another open file description of the pool's lock file would have to wait."""
    descriptor = os.open(FileLocks(storage.locks_dir).path(pool), os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)


@asset(pool="warehouse")
@holds_its_pool
def reads_the_warehouse(context: AssetExecutionContext, storage: PlatformStorage) -> bool:
    return lock_is_taken(storage, "warehouse")


@asset(pool="accounting_api")
@holds_its_pool
def extracts_in_pages(context: AssetExecutionContext, storage: PlatformStorage):
    yield Output(lock_is_taken(storage, "accounting_api"))


@pytest.mark.parametrize("step", [reads_the_warehouse, extracts_in_pages])
def test_a_pooled_step_holds_its_pools_lock_while_it_runs_and_frees_it_after(step, storage):
    result = materialize([step], resources={"storage": storage})
    assert result.output_for_node(step.op.name) is True
    assert not lock_is_taken(storage, step.op.pool)


def test_the_cluster_profile_locks_in_postgres_and_needs_its_url(monkeypatch, tmp_path):
    cluster = PlatformStorage(
        data_dir=str(tmp_path),
        profile="cluster",
        postgres_host="db.internal",
        postgres_database="unified_assets",
        postgres_user="platform",
    )
    assert isinstance(cluster.pool_locks(), PostgresAdvisoryLocks)
    assert isinstance(PlatformStorage(data_dir=str(tmp_path)).pool_locks(), FileLocks)
    with pytest.raises(
        SettingError, match=f"{PROFILE_VAR}=cluster needs .* PGHOST, PGDATABASE, PGUSER"
    ):
        PlatformStorage(data_dir=str(tmp_path), profile="cluster").pool_locks()


def test_the_profile_and_the_postgres_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_VAR, "cluster")
    for variable, value in {
        "PGHOST": "db.internal",
        "PGPORT": "6432",
        "PGDATABASE": "unified_assets",
        "PGUSER": "platform",
        "PGPASSWORD": "canary-pw-51c",
    }.items():
        monkeypatch.setenv(variable, value)
    assert "canary-pw-51c" not in repr(PlatformStorage.from_environment())
    database = PlatformStorage.outside_dagster().postgres()
    assert (database.host, database.port, database.password) == (
        "db.internal",
        6432,
        "canary-pw-51c",
    )
    assert "canary-pw-51c" not in repr(database) + database.describe()


def test_an_unknown_profile_names_its_variable(tmp_path):
    with pytest.raises(SettingError, match=f"{PROFILE_VAR}='laptop': the profile is `local`"):
        PlatformStorage(data_dir=str(tmp_path), profile="laptop").pool_locks()
