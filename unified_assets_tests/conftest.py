"""Fixtures every test file may use, and the order test files start in. Helpers live in `support/`.

The folders mirror the house: `plain/` (the plain libraries), `lib/`, `defs/<domain>/`, `simulator/`,
`end_to_end/` (`dagster dev` and a browser), `deploy/` (the Kubernetes deployment's files, without a
cluster); whole-house rules (layering, the definitions snapshot, security, the fault matrix, style) at the
top."""

from __future__ import annotations

import os
import signal

import pytest

from saas_simulator.config import WorldConfig
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.services import (
    PostgresServer,
    S3Server,
    running_postgres,
    running_s3,
)

# scikit-learn's gradient boosting runs one OpenMP thread per core, and idle OpenMP threads spin. Two test
# processes each doing that on a two-core machine slowed the forecasting tests from 20 s to ten minutes:
# give each worker its share of the cores (set before scikit-learn is first imported, which reads it once).
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))


def pytest_configure(config) -> None:
    """A suite started in the background by a script (`cmd &`, `nohup`) inherits SIGINT ignored. Every
    in-process run then maps SIGTERM to SIGINT's handler on its way out (Dagster's
    `setup_interrupt_handlers`), so SIGTERM is ignored too, and so is it in every child started after:
    the `tail -F` that a local instance's compute-log capture starts per step then outlives its
    `terminate()`, and each step waited up to 30 s for it (a test of 5 s took 66 s). The test processes
    take the interpreter's own handlers back, as a terminal would give them."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def demo_config() -> WorldConfig:
    return WorldConfig.demo()


@pytest.fixture
def data_dir(tmp_path):
    """A data folder of the test's own (created by what writes into it)."""
    return tmp_path / "data"


@pytest.fixture
def storage(data_dir) -> PlatformStorage:
    """The storage resource, keeping everything under the test's own data folder."""
    return PlatformStorage(data_dir=str(data_dir))


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A PostgreSQL server of this test process's own on a loopback port, shared by its tests."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server):
    """A new empty database of the test's own (a `unified_assets.postgres.PostgresDatabase`)."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """An S3 endpoint (moto's server) of this test process's own on a loopback port."""
    with running_s3() as server:
        yield server


# The slowest files start first, so the two test processes finish together rather than one waiting on
# a late-started `dagster dev` test (with --dist loadfile, files go out in collection order).
SLOWEST_FIRST = (
    "test_dagster_dev.py",
    "test_dagster_dev_on_postgres.py",
    "test_ducklake.py",
    "test_transform.py",
    "test_ml_assets.py",
    "test_fault_matrix.py",
    "test_cluster_chain.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)
