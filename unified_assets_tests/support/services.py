"""The real services the `cluster` profile's tests need, started on loopback ports for one test session.

- PostgreSQL from Debian's packages (`.ci/run` installs them when absent): a throwaway cluster made by
  `initdb` in a temporary folder, password authentication over TCP, durability switched off (a test
  database need not survive a power cut).
- An S3 endpoint: moto's server (a PyPI package, a dev dependency), which speaks S3's wire protocol.

Without them a test of the profile skips on a developer's machine and fails under `CI=true`, so CI cannot
pass by skipping them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_USER = "unified_assets"
# Starting takes about a second; these bound a start that never comes, not a start that is slow.
STARTUP_LIMIT_SECONDS = 120


def unavailable(reason: str) -> None:
    """Skip the test here, fail it in CI: a service CI must have is never silently absent there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the cluster profile's services must be there)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    password: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self):  # -> unified_assets.postgres.PostgresDatabase
        """A new empty database of the test's own."""
        import psycopg

        from unified_assets.postgres import PostgresDatabase

        name = f"test_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'create database "{name}"')
        return PostgresDatabase(self.host, name, POSTGRES_USER, self.password, self.port)


def postgres_bin_dir() -> Path | None:
    """The newest server binaries Debian's packages installed (`initdb` and `pg_ctl` are not on PATH
    there), or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root (CI's user): run it as the `postgres` user the package made."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="unified-assets-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    password = secrets.token_urlsafe(16)
    password_file = folder / "password"
    password_file.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    data = folder / "data"
    port = free_port()
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                POSTGRES_USER,
                "--pwfile",
                str(password_file),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    started = subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "--wait",
                f"--timeout={STARTUP_LIMIT_SECONDS}",
                "--pgdata",
                str(data),
                "--log",
                str(folder / "server.log"),
                "--options",
                options,
            ]
        ),
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{log}")
    try:
        yield PostgresServer("127.0.0.1", port, password)
    finally:
        subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data), "--mode", "immediate"]
            ),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"

    def client(self):  # a boto3 client (boto3 has no annotations of its own)
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def settings(self):  # -> unified_assets.places.S3Settings
        from unified_assets.places import S3Settings

        return S3Settings.from_endpoint_url(
            self.endpoint_url, self.access_key_id, self.secret_access_key, self.region
        )

    def create_bucket(self) -> str:
        """A new empty bucket of the test's own; returns its name."""
        name = f"test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running_s3() -> Iterator[S3Server]:
    try:
        import moto.server  # noqa: F401 - present, or the test skips
    except ImportError:
        unavailable("moto's S3 server is not installed (scripts/bootstrap installs the dev extras)")
    port = free_port()
    # Its request log goes to a file: a pipe nobody reads fills up and the server stops answering.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_for_port(port, process, log)
            yield S3Server(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_for_port(port: int, process: subprocess.Popen, log) -> None:
    """Until the server accepts connections; fails at once if it exits instead."""
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"moto's server exited ({process.returncode}): {log.read()[-2000:]!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"moto's server did not listen on port {port} within {STARTUP_LIMIT_SECONDS} s")


def cluster_storage(
    data_dir: Path, postgres_database, s3_server: S3Server, bucket_url: str | None = None
):
    """The storage resource in the `cluster` profile: `bucket_url` (default: a new bucket of the test's
    own on `s3_server`), the pools' locks, the warehouse's catalog and the models' production pointers in
    `postgres_database`, `data_dir` as this host's scratch folder."""
    from unified_assets.lib.storage import PlatformStorage

    return PlatformStorage(
        data_dir=str(data_dir),
        profile="cluster",
        postgres_host=postgres_database.host,
        postgres_port=str(postgres_database.port),
        postgres_database=postgres_database.dbname,
        postgres_user=postgres_database.user,
        postgres_password=postgres_database.password,
        bucket_url=bucket_url or f"s3://{s3_server.create_bucket()}/unified_assets",
        s3_endpoint=s3_server.endpoint_url,
        s3_region=s3_server.region,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
    )


def cluster_instance_environment(
    postgres_database, s3_server: S3Server, bucket: str
) -> dict[str, str]:
    """The variables deploy/cluster/dagster.yaml reads, pointing at the test's services, with step logs
    in `bucket`."""
    database = postgres_database
    return {
        "DAGSTER_PG_HOST": database.host,
        "DAGSTER_PG_PORT": str(database.port),
        "DAGSTER_PG_DB": database.dbname,
        "DAGSTER_PG_USER": database.user,
        "DAGSTER_PG_PASSWORD": database.password,
        "DAGSTER_COMPUTE_LOGS_BUCKET": bucket,
        "UNIFIED_ASSETS_S3_ENDPOINT": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
    }


def cluster_instance_home(tmp_path, monkeypatch, postgres_database, s3_server) -> str:
    """DAGSTER_HOME with deploy/cluster/dagster.yaml, its variables pointing at the test's services;
    returns the bucket it keeps step logs in."""
    from unified_assets.settings import PROJECT_ROOT

    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "cluster" / "dagster.yaml", tmp_path / "dagster.yaml")
    bucket = s3_server.create_bucket()
    environment = cluster_instance_environment(postgres_database, s3_server, bucket)
    for variable, value in {"DAGSTER_HOME": str(tmp_path), **environment}.items():
        monkeypatch.setenv(variable, value)
    return bucket
