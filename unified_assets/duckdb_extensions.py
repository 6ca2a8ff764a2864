"""DuckDB's extensions from the Python packages that carry them, never from DuckDB's download site.

The `cluster` profile reads and writes the bucket (`httpfs`) and keeps the warehouse's catalog in Postgres
(`ducklake`, `postgres`). DuckDB would download those binaries on first use; here they come from wheels
(`duckdb-extension-<name>`, the `cluster` extra), each built for exactly one DuckDB version, so they are in
the lock file like any dependency and a machine without internet access runs the profile.

`extension_directory` lays the wheels' binaries out as DuckDB's own extension folder
(`<folder>/v<version>/<platform>/<name>.duckdb_extension`, symbolic links), so a connection configured with
`connection_settings` loads them by name, automatically where a statement needs one (`ATTACH 'ducklake:...'`,
an `s3://` path), and never downloads. DuckDB checks each binary's signature as it loads it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from pathlib import Path
from typing import Any

import duckdb

# Package suffix -> the name DuckDB knows the extension by (its binary's file name and init function).
CLUSTER_EXTENSIONS = {"httpfs": "httpfs", "ducklake": "ducklake", "postgres": "postgres_scanner"}


class ExtensionUnavailable(RuntimeError):
    """An extension's package is missing or built for another DuckDB; says which and what to install."""


def extension_binary(package: str) -> Path:
    """The binary `duckdb-extension-<package>` ships for the installed DuckDB."""
    try:
        module = importlib.import_module(f"duckdb_extension_{package}")
    except ImportError:
        raise ExtensionUnavailable(
            f"DuckDB's {package} extension is not installed: install the project's `cluster` extra "
            f"(pip install 'unified_assets[cluster]', which includes duckdb-extension-{package})"
        ) from None
    binary = (
        Path(module.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{package}.duckdb_extension"
    )
    if not binary.is_file():
        shipped = importlib.metadata.version(f"duckdb-extension-{package}")
        raise ExtensionUnavailable(
            f"duckdb-extension-{package} {shipped} carries no binary for DuckDB {duckdb.__version__}: "
            "install the versions the lock file pins (they move together)"
        )
    return binary


def extension_directory(folder: Path) -> Path:
    """`folder` laid out as DuckDB's extension folder for the installed DuckDB, linking every cluster
    extension's binary; idempotent, and safe when several processes do it at once."""
    platform = duckdb.execute("pragma platform").fetchone()[0]
    target = Path(folder) / f"v{duckdb.__version__}" / platform
    target.mkdir(parents=True, exist_ok=True)
    for package, name in CLUSTER_EXTENSIONS.items():
        link = target / f"{name}.duckdb_extension"
        binary = extension_binary(package)
        if link.is_symlink() and Path(os.readlink(link)) == binary:
            continue
        staged = target / f".{name}.{os.getpid()}.link"
        staged.unlink(missing_ok=True)
        staged.symlink_to(binary)
        os.replace(staged, link)  # atomic: a concurrent loader sees the old link or the new one
    return Path(folder)


def connection_settings(folder: Path) -> dict[str, Any]:
    """DuckDB configuration that loads the cluster extensions from `folder` and never installs any."""
    return {
        "extension_directory": str(extension_directory(folder)),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
    }
