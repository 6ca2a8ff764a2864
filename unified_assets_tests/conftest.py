"""Shared fixtures: a simulator on an ephemeral loopback port and a temporary data folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from dagster import materialize

from unified_assets.assets.raw import raw_assets
from unified_assets.assets.transform import dbt_cli, dbt_models
from unified_assets.resources import resources_pointed_at
from unified_assets.simulator import (
    FaultPlan,
    SimClock,
    SimCredentials,
    SimulatorServer,
    World,
    WorldConfig,
)

# scikit-learn's gradient boosting runs one OpenMP thread per core, and idle OpenMP threads spin. Two test
# processes each doing that on a two-core machine slowed the forecasting tests from 20 s to ten minutes:
# give each worker its share of the cores (set before scikit-learn is first imported, which reads it once).
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))

FROZEN_AT = datetime.fromisoformat("2026-03-15T12:00:00+00:00")

# Patient enough for every injected fault, quick enough for a test suite.
FAST_RETRIES = {
    "connect_timeout_s": 2.0,
    "read_timeout_s": 0.5,
    "max_retries": 8,
    "backoff_factor_s": 0.01,
    "backoff_max_s": 0.05,
    "backoff_jitter_s": 0.01,
    "retry_after_max_s": 1,
}


@pytest.fixture(scope="session")
def demo_config() -> WorldConfig:
    return WorldConfig.demo()


def frozen_world(config: WorldConfig) -> World:
    return World(config, clock=SimClock.frozen(FROZEN_AT))


@contextmanager
def serving(
    world: World, faults: FaultPlan | None = None, **server_options
) -> Iterator[SimulatorServer]:
    server = SimulatorServer(world, faults=faults, host="127.0.0.1", port=0, **server_options)
    with server:
        yield server


def source_resources(
    server: SimulatorServer, credentials: SimCredentials | None = None, **overrides
) -> dict:
    """Resources pointed at `server` as if it were the real services, with fast retries."""
    return resources_pointed_at(server, credentials, **{**FAST_RETRIES, **overrides})


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    directory = tmp_path / "data"
    monkeypatch.setenv("UNIFIED_ASSETS_DATA_DIR", str(directory))
    return directory


def build_warehouse(data_dir: Path, world: World, first_day: str, last_day: str) -> Path:
    """Land [first_day, last_day] from `world` in one run and build every dbt model, into `data_dir`."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("UNIFIED_ASSETS_DATA_DIR", str(data_dir))
    try:
        with serving(world) as server:
            landed = materialize(
                raw_assets,
                resources=source_resources(server),
                tags={
                    "dagster/asset_partition_range_start": first_day,
                    "dagster/asset_partition_range_end": last_day,
                },
            )
        assert landed.success
        assert materialize([dbt_models], resources={"dbt": dbt_cli()}).success
    finally:
        monkeypatch.undo()
    return data_dir


def copy_of_warehouse(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A test's own copy of a module's built data folder (without the lake), made the data folder."""
    directory = tmp_path / "data"
    shutil.copytree(built, directory, ignore=shutil.ignore_patterns("lake"))
    monkeypatch.setenv("UNIFIED_ASSETS_DATA_DIR", str(directory))
    return directory


# The three slowest files start first, so the two test processes finish together rather than one waiting on
# a late-started `dagster dev` test (with --dist loadfile, files go out in collection order).
SLOWEST_FIRST = ("test_dagster_dev.py", "test_transform.py", "test_ml_assets.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)
