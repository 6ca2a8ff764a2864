"""The `cluster` profile's warehouse: a DuckLake, its catalog in Postgres and its data files (Parquet) in a
bucket prefix, so dbt on any host writes it and readers on any host read it, with the same DuckDB SQL as
the local warehouse file.

dbt attaches it through dbt-duckdb (dbt_project/profiles.yml, target `cluster`); Python assets and
sensors read it through `DuckLakeWarehouse.connect`, read-only. Every read sees one committed snapshot:
DuckLake commits a dbt model's new files and their catalog rows in one Postgres transaction, so a reader
sees the model before or after, never half of it.
"""

from __future__ import annotations

import duckdb

from unified_assets.confined_duckdb import confine
from unified_assets.duckdb_extensions import connection_settings
from unified_assets.places import S3Prefix
from unified_assets.postgres import PostgresDatabase

ALIAS = "warehouse"


class WarehouseUnavailable(RuntimeError):
    """The catalog cannot be reached or holds no warehouse yet; says where, never with credentials."""


class DuckLakeWarehouse:
    def __init__(self, catalog: PostgresDatabase, data: S3Prefix):
        self.catalog = catalog
        self.data = data

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the warehouse attached as its default database, reaching nothing
        but the catalog and the warehouse's prefix of the bucket."""
        con = duckdb.connect(config=connection_settings(self.data.extensions_dir))
        try:
            self.data.add_secret(con)
            self._add_catalog_secret(con)
            options = "read_only" if read_only else f"data_path '{self.data.url}/'"
            try:
                con.execute(f"attach 'ducklake:postgres:' as {ALIAS} ({options})")
            except duckdb.Error as error:
                raise WarehouseUnavailable(
                    f"cannot attach the warehouse's DuckLake catalog ({self.catalog.describe()}, data "
                    f"in {self.data.url}): {_first_line(error)}"
                ) from None
            con.execute(f"use {ALIAS}")
            confine(con, [], remote=[self.data.url])
        except BaseException:
            con.close()
            raise
        return con

    def _add_catalog_secret(self, con: duckdb.DuckDBPyConnection) -> None:
        """The default Postgres secret, which `ATTACH 'ducklake:postgres:'` connects with. Its statement
        holds the password, so a failure is reported without it."""
        c = self.catalog
        fields = {"host": c.host, "database": c.dbname, "user": c.user, "password": c.password}
        listed = ", ".join(
            f"{key} '{value.replace(chr(39), chr(39) * 2)}'" for key, value in fields.items()
        )
        try:
            con.execute(f"create temporary secret (type postgres, port {int(c.port)}, {listed})")
        except duckdb.Error:
            raise WarehouseUnavailable(
                f"the warehouse catalog's settings ({c.describe()}) were refused by DuckDB"
            ) from None


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
