"""Locks that let one step at a time into a pool, whichever process or host it runs in.

Dagster's pools are meant to do this, and with the instance's slot limit of one they nearly do: Dagster
1.13's slot claim selects a free slot, then updates that slot by id without checking it is still free, so
steps claiming in the same few milliseconds can all win it (docs/reliability.md, *Pool slots*, has the
reproducer; up to 4 holders of a one-slot pool measured on SQLite and on Postgres storage). Every pooled
step therefore also holds one of these locks while it works:

- `FileLocks` (the `local` profile): an advisory `flock` on a file in the data folder. The kernel drops it
  when the holder's process dies, so a killed run frees it; it holds across the processes of one host.
- `PostgresAdvisoryLocks` (the `cluster` profile): a session-level `pg_advisory_lock` on a connection of its
  own. Postgres drops it when the connection ends, holder killed included; it holds across hosts.

Both block until the lock is free, and say first when they have to wait, and for which pool.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from unified_assets.postgres import PostgresDatabase

# Every lock of the platform is one key in Postgres's single advisory-lock space, shared with whatever
# else uses the database: the namespace keeps ours apart.
ADVISORY_LOCK_NAMESPACE = "unified_assets/pool/"
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class PoolLockError(RuntimeError):
    """A pool's lock could not be taken for a reason other than another holder (the lock service is
    unreachable, the lock folder unwritable); names the pool and where its lock lives."""


class PoolLocks(Protocol):
    def hold(
        self, pool: str, on_wait: Callable[[], None] | None = None
    ) -> AbstractContextManager[None]:
        """Held for the `with` block; `on_wait` is called once before waiting for another holder."""


def _checked(pool: str) -> str:
    if not _POOL_NAME.match(pool):
        raise ValueError(f"pool name {pool!r}: letters, digits, '_', '.' and '-' only")
    return pool


class FileLocks:
    """One lock file per pool under `folder`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, pool: str) -> Path:
        return self.folder / f"{_checked(pool)}.lock"

    @contextmanager
    def hold(self, pool: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        path = self.path(pool)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise PoolLockError(
                f"pool {pool!r}: cannot open its lock file {path}: {error}"
            ) from error
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing the only descriptor of the file releases the lock


class PostgresAdvisoryLocks:
    """Session-level advisory locks in a Postgres database."""

    def __init__(self, database: PostgresDatabase, connect_timeout_seconds: int = 10):
        self.database = database
        self.connect_timeout_seconds = connect_timeout_seconds

    @contextmanager
    def hold(self, pool: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        import psycopg

        key = ADVISORY_LOCK_NAMESPACE + _checked(pool)
        try:
            connection = self.database.connect(self.connect_timeout_seconds, autocommit=True)
        except psycopg.Error as error:
            raise PoolLockError(
                f"pool {pool!r}: cannot reach the Postgres database that holds the pools' locks "
                f"({self.database.describe()}): {type(error).__name__}"
            ) from None
        with connection:
            taken = connection.execute(
                "select pg_try_advisory_lock(hashtextextended(%s, 0))", [key]
            ).fetchone()[0]
            if not taken:
                if on_wait is not None:
                    on_wait()
                connection.execute("select pg_advisory_lock(hashtextextended(%s, 0))", [key])
            yield
            # Closing the connection releases the lock as well; unlocking first hands it on at once.
            connection.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", [key])
