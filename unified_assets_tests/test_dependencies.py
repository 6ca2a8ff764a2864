"""The lock file's DuckDB and the extension wheels of the `cluster` extra stay in step: each wheel carries a
binary for exactly one DuckDB version, and a mismatch would only show when the cluster profile first
touches the bucket."""

import re

import duckdb
import pytest

from unified_assets.duckdb_extensions import CLUSTER_EXTENSIONS, connection_settings
from unified_assets.settings import PROJECT_ROOT


def locked_versions() -> dict[str, str]:
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)", lock, flags=re.MULTILINE))


def test_the_lock_pins_every_duckdb_extension_at_duckdbs_version():
    locked = locked_versions()
    pinned = {package: locked.get(f"duckdb-extension-{package}") for package in CLUSTER_EXTENSIONS}
    assert pinned == dict.fromkeys(CLUSTER_EXTENSIONS, locked["duckdb"])


def test_the_installed_duckdb_is_the_locked_one():
    assert duckdb.__version__ == locked_versions()["duckdb"]


@pytest.mark.parametrize(("package", "name"), CLUSTER_EXTENSIONS.items())
def test_each_extension_loads_by_name_from_its_package_without_a_download(package, name, tmp_path):
    settings = connection_settings(tmp_path / "extensions")
    con = duckdb.connect(config={**settings, "allow_unsigned_extensions": False})
    con.execute(f"load {name}")
    [(loaded, path)] = con.execute(
        "select loaded, install_path from duckdb_extensions() where extension_name = ?", [name]
    ).fetchall()
    assert loaded and path.startswith(str(tmp_path))
    assert (
        connection_settings(tmp_path / "extensions") == settings
    )  # a second layout changes nothing


def test_the_image_lock_pins_what_the_development_lock_pins():
    """deploy/k8s/requirements.lock (the runtime and the `cluster` extra, what the image installs) is
    compiled with requirements.lock as its constraint: a package in both has one version."""
    image = dict(
        re.findall(
            r"^([a-z0-9-]+)==(\S+)",
            (PROJECT_ROOT / "deploy" / "k8s" / "requirements.lock").read_text(),
            flags=re.MULTILINE,
        )
    )
    developed = locked_versions()
    assert {"dagster-k8s", "dagster-postgres", "duckdb-extension-ducklake"} <= set(image)
    assert {
        name: version for name, version in image.items() if developed.get(name) != version
    } == {}
    assert not {"pytest", "moto", "playwright"} & set(image), "the image carries no dev tools"
