"""A dbt-duckdb plugin that confines dbt's warehouse connection as `confined_duckdb` confines the others.

dbt runs the models' SQL with the warehouse's only write connection. The models need to read the lake and
the ML hand-off files and nothing else: no network, no extensions, no file elsewhere. profiles.yml names
this module under `plugins:` with the folders (and, for the `cluster` target, the bucket prefixes) it may
reach; dbt-duckdb calls `configure_connection` once, on the connection every model's cursor comes from, so
a model (or a macro from a package) that tries `read_csv('/etc/passwd')`, `COPY ... TO` elsewhere,
`ATTACH`, `INSTALL` or switching the setting back fails with a permission error.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from unified_assets.confined_duckdb import confine


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        allowed = plugin_config.get("allowed")
        if not isinstance(allowed, list) or not allowed or not all(allowed):
            raise ValueError(
                "profiles.yml: the dbt_confinement plugin needs `allowed`, a list of the folders dbt "
                f"may read and write; got {allowed!r}"
            )
        remote = plugin_config.get("remote", [])
        if not isinstance(remote, list) or not all(remote):
            raise ValueError(
                "profiles.yml: the dbt_confinement plugin's `remote` is a list of bucket prefixes "
                f"(s3://bucket/prefix); got {remote!r}"
            )
        self.allowed = allowed
        self.remote = remote
        self.ducklake_data_path = plugin_config.get("ducklake_data_path") or None

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        if self.ducklake_data_path is not None:
            # ATTACH is refused once the connection is confined, so the DuckLake (the cluster target's
            # warehouse, profiles.yml) is attached first: its catalog through the default Postgres
            # secret profiles.yml creates, its files under the prefix.
            path = self.ducklake_data_path.replace("'", "''")
            conn.execute(f"attach 'ducklake:postgres:' as warehouse (data_path '{path}')")
        confine(conn, self.allowed, remote=self.remote)
