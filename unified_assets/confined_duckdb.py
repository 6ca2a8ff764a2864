"""DuckDB connections that can reach only the folders they are for.

The platform's own SQL (checks over the lake, assets reading the warehouse, Parquet hand-offs) never needs
the network, extensions, or files outside the data folder. A connection from here has DuckDB's external
access switched off except for a list of folders, and its configuration locked, so no statement can switch
it back on: a crafted path, `ATTACH`, `COPY ... TO` elsewhere or `INSTALL` fails with a permission error
instead of reading /etc/passwd or fetching code. dbt's connection, the warehouse's only writer, is confined
the same way by `dbt_confinement`, a dbt-duckdb plugin named in profiles.yml.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb


def confined_duckdb(
    database: str | Path = ":memory:",
    *,
    allowed: Iterable[str | Path],
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection to `database` that reads and writes files only under the `allowed` folders, in UTC
    (the platform's time zone: timestamps read the same on every machine)."""
    con = duckdb.connect(str(database), read_only=read_only, config=dict(config or {}))
    try:
        confine(con, allowed)
    except BaseException:
        con.close()
        raise
    return con


def confine(
    con: duckdb.DuckDBPyConnection, allowed: Iterable[str | Path], remote: Iterable[str] = ()
) -> None:
    """Switch off `con`'s external access except under the `allowed` folders and the `remote` prefixes
    (`s3://bucket/prefix`), set it to UTC, and lock its configuration. Irreversible for the whole
    database instance, every cursor of it included."""
    # A trailing separator: "/data/lake" must not also allow "/data/lake-other".
    # Both spellings of each folder, as given and with symlinks resolved: paths in queries use either.
    folders = sorted(
        {
            str(spelling).rstrip(os.sep) + os.sep
            for folder in allowed
            for spelling in (Path(folder).absolute(), Path(folder).resolve())
        }
        | {prefix.rstrip("/") + "/" for prefix in remote}
    )
    con.execute("set TimeZone = 'UTC'")
    con.execute("set allowed_directories = ?", [folders])
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
