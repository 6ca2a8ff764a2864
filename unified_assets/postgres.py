"""The `cluster` profile's Postgres database, named as libpq names it (PGHOST, PGPORT, PGDATABASE, PGUSER,
PGPASSWORD): psql, psycopg and DuckDB's postgres extension all read those variables, so a deployment sets
them once. The password never goes into a URL, a SQL statement's text or a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PostgresDatabase:
    host: str
    dbname: str
    user: str
    password: str = field(default="", repr=False)
    port: int = 5432

    def describe(self) -> str:
        """Where it is, for messages: host, port and database, never the user or the password."""
        return f"host {self.host}, port {self.port}, database {self.dbname}"

    def connect(self, connect_timeout_seconds: int = 10, **options: Any) -> Any:
        """A psycopg connection (the cluster extra's dependency; the local profile never loads it)."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            connect_timeout=connect_timeout_seconds,
            **options,
        )

    def libpq_environment(self) -> dict[str, str]:
        """The same settings as libpq's variables, for a process that reads them (dbt's DuckDB)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": self.dbname,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }
