"""Where the platform keeps everything it writes, as the one resource every asset, check and sensor receives.

Two profiles (docs/scale-out.md):
- `local` (the default, `dagster dev`): the lake, the warehouse, the model registry, the hand-off files
  between steps, the webhook inbox, the alerts log and the pools' locks all live under one data folder
  (`data/` in the project, or `UNIFIED_ASSETS_DATA_DIR`);
- `cluster`: several processes on several hosts share a Postgres database (the pools' locks, the
  warehouse's catalog, the model registry's production pointer) and a bucket (the lake, the warehouse's
  files, the models, the hand-offs, the inbox, the alerts) instead of one folder.
Nothing else in the platform knows these settings: code asks the `storage` resource for a location or a
lock, so a deployment that keeps its data somewhere else changes this resource's configuration, not the
assets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from unified_assets.alerts import AlertsInBucket, AlertsLog, KeepsAlerts
from unified_assets.duckdb_extensions import extension_directory
from unified_assets.ducklake import DuckLakeWarehouse
from unified_assets.lake import Lake
from unified_assets.lib.environment import bound_to_set_variables
from unified_assets.model_registry import ModelRegistry
from unified_assets.places import LocalFolder, Place, S3Prefix, S3Settings
from unified_assets.pool_locks import FileLocks, PoolLocks, PostgresAdvisoryLocks
from unified_assets.postgres import PostgresDatabase
from unified_assets.settings import PROJECT_ROOT, SettingError
from unified_assets.webhooks.inbox import Inbox

DATA_DIR_VAR = "UNIFIED_ASSETS_DATA_DIR"
PROFILE_VAR = "UNIFIED_ASSETS_PROFILE"
# libpq's own variables: psql, psycopg and dbt's DuckDB read the same ones (unified_assets/postgres.py).
POSTGRES_VARS = {
    "postgres_host": "PGHOST",
    "postgres_port": "PGPORT",
    "postgres_database": "PGDATABASE",
    "postgres_user": "PGUSER",
    "postgres_password": "PGPASSWORD",
}
BUCKET_URL_VAR = "UNIFIED_ASSETS_BUCKET_URL"
S3_ENDPOINT_VAR = "UNIFIED_ASSETS_S3_ENDPOINT"
PROFILES = ("local", "cluster")
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

# The data folder's path is written into SQL text (dbt's sources read `read_parquet('<folder>/lake/...')`,
# where it cannot be a parameter) and DuckDB globs it: a quote would end the string, a glob character would
# read other folders. Such a path is refused rather than escaped.
UNSAFE_PATH_CHARACTERS = frozenset("'\"`\\*?[]{}") | {chr(code) for code in range(32)}


class PlatformStorage(ConfigurableResource):
    """Every location the platform writes, derived from one data folder."""

    data_dir: str = Field(
        default="",
        description=(
            f"The folder everything the platform writes goes under ({DATA_DIR_VAR}). Empty: data/ in "
            "the project. A plain path: no quotes, backslashes, glob or control characters."
        ),
    )

    # A plain string, not a Literal: an EnvVar stands in for it until a run resolves it (`is_cluster`).
    profile: str = Field(
        default="local",
        description=(
            f"`local` keeps everything under the data folder; `cluster` shares state between hosts "
            f"through Postgres ({PROFILE_VAR})."
        ),
    )
    postgres_host: str = Field(
        default="", description="The cluster profile's Postgres host (PGHOST)."
    )
    postgres_port: str = Field(default="5432", description="Its port (PGPORT).")
    postgres_database: str = Field(default="", description="Its database (PGDATABASE).")
    postgres_user: str = Field(default="", description="Its user (PGUSER).")
    postgres_password: str = Field(default="", description="Its password (PGPASSWORD, secret).")

    bucket_url: str = Field(
        default="",
        description=(
            f"The `cluster` profile's bucket prefix, s3://bucket/prefix ({BUCKET_URL_VAR}): the lake "
            "lives under <prefix>/lake."
        ),
    )
    s3_endpoint: str = Field(
        default="",
        description=(
            f"The S3 API's URL ({S3_ENDPOINT_VAR}), e.g. https://s3.eu-west-1.amazonaws.com or an "
            "S3-compatible server's http://host:port."
        ),
    )
    s3_region: str = Field(default="us-east-1", description="The bucket's region (AWS_REGION).")
    s3_access_key_id: str = Field(default="", description="AWS_ACCESS_KEY_ID (secret).")
    s3_secret_access_key: str = Field(default="", description="AWS_SECRET_ACCESS_KEY (secret).")

    ENV_VARS: ClassVar[dict[str, str]] = {
        "data_dir": DATA_DIR_VAR,
        "profile": PROFILE_VAR,
        **POSTGRES_VARS,
        "bucket_url": BUCKET_URL_VAR,
        "s3_endpoint": S3_ENDPOINT_VAR,
        "s3_region": "AWS_REGION",
        "s3_access_key_id": "AWS_ACCESS_KEY_ID",
        "s3_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    }

    @classmethod
    def from_environment(cls, **overrides: Any) -> PlatformStorage:
        """Each setting bound to its variable through `EnvVar` when that is set (Dagster resolves it when
        a run starts); the local profile under the project's data/ folder otherwise."""
        bound = bound_to_set_variables(cls.ENV_VARS)
        return cls(**{**bound, **overrides})

    @classmethod
    def outside_dagster(cls) -> PlatformStorage:
        """The same settings for a process Dagster does not start (the webhook receiver, scripts), which
        has no run to resolve an `EnvVar` in."""
        return cls(
            **{
                field: value
                for field, variable in cls.ENV_VARS.items()
                if (value := os.environ.get(variable, "").strip())
            }
        )

    @property
    def root(self) -> Path:
        configured = self.data_dir.strip()
        folder = Path(configured).expanduser().resolve() if configured else DEFAULT_DATA_DIR
        unsafe = sorted(set(str(folder)) & UNSAFE_PATH_CHARACTERS)
        if unsafe:
            raise SettingError(
                f"{DATA_DIR_VAR}={configured!r}: the data folder's path must not contain "
                f"{' '.join(repr(c) for c in unsafe)} (quotes, backslashes, glob characters and "
                "control characters would reach SQL text and file patterns); choose a plainer path"
            )
        return folder

    @property
    def lake_dir(self) -> Path:
        """Raw extracts as Parquet, one file per day; dbt reads them as external sources."""
        return self.root / "lake"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file dbt builds and is the only writer of."""
        return self.root / "warehouse.duckdb"

    @property
    def models_dir(self) -> Path:
        """The model registry: versioned models and their production pointers."""
        return self.root / "models"

    @property
    def handoff_dir(self) -> Path:
        """Tables Python assets hand to each other and to dbt, one Parquet file each."""
        return self.root / "ml"

    @property
    def operations_dir(self) -> Path:
        """What the business-event assets write: enriched P1 tickets, closed months."""
        return self.root / "operations"

    def inbox(self) -> Inbox:
        """Verified webhook deliveries waiting for the business-event sensors: under the data folder, or
        in the bucket in the cluster profile (the receiver and the sensors may run on different hosts)."""
        if not self.is_cluster:
            return Inbox.in_folder(self.root / "inbox")
        return Inbox.in_bucket(self.bucket_place("inbox"))

    def alerts_log(self) -> KeepsAlerts:
        """Every failure alert, the sink that always takes one: a JSON-lines file under the data folder, or
        one object per alert in the bucket in the cluster profile."""
        if not self.is_cluster:
            return AlertsLog(self.root / "alerts" / "alerts.jsonl")
        return AlertsInBucket(self.bucket_place("alerts"))

    @property
    def simulator_dir(self) -> Path:
        """What the embedded simulator must remember across processes, as a real system would (the
        custom fields written to purchasing items)."""
        return self.root / "simulator"

    @property
    def is_cluster(self) -> bool:
        profile = self.profile.strip()
        if profile not in PROFILES:
            raise SettingError(
                f"{PROFILE_VAR}={self.profile!r}: the profile is `local` (everything under the data "
                "folder) or `cluster` (state shared through Postgres)"
            )
        return profile == "cluster"

    @property
    def locks_dir(self) -> Path:
        """The local profile's pool locks, one file per pool."""
        return self.root / "locks"

    def pool_locks(self) -> PoolLocks:
        """The locks that keep each pool to one step at a time (unified_assets.pool_locks says why Dagster's
        own slots are not enough): files in the data folder, or advisory locks in the cluster's Postgres."""
        if not self.is_cluster:
            return FileLocks(self.locks_dir)
        return PostgresAdvisoryLocks(self.postgres())

    def postgres(self) -> PostgresDatabase:
        """The cluster profile's Postgres database: the pools' locks and the warehouse's catalog."""
        missing = [
            POSTGRES_VARS[name]
            for name in ("postgres_host", "postgres_database", "postgres_user")
            if not getattr(self, name).strip()
        ]
        if missing:
            raise SettingError(
                f"{PROFILE_VAR}=cluster needs the Postgres database the hosts share: set "
                f"{', '.join(missing)} (libpq's variables; PGPASSWORD and PGPORT too where needed)"
            )
        try:
            port = int(self.postgres_port)
        except ValueError:
            raise SettingError(f"PGPORT={self.postgres_port!r} is not a port number") from None
        return PostgresDatabase(
            host=self.postgres_host.strip(),
            port=port,
            dbname=self.postgres_database.strip(),
            user=self.postgres_user.strip(),
            password=self.postgres_password,
        )

    def lake(self) -> Lake:
        """The raw partitions: under the data folder, or in the bucket in the cluster profile (staged
        and typed in the data folder, which is then only this host's scratch space)."""
        if not self.is_cluster:
            return Lake(self.lake_dir)
        return Lake(self.bucket_place("lake"), scratch_dir=self.root / "_staging")

    def bucket_place(self, name: str) -> S3Prefix:
        """`<bucket prefix>/<name>` in the cluster profile's bucket."""
        bucket_url = self.bucket_url.strip().rstrip("/")
        if not bucket_url.startswith("s3://") or len(bucket_url) <= len("s3://"):
            raise SettingError(
                f"{PROFILE_VAR}=cluster needs {BUCKET_URL_VAR}, the bucket prefix the hosts share "
                f"(s3://bucket/prefix); got {bucket_url!r}"
            )
        if not self.s3_endpoint.strip():
            raise SettingError(
                f"{PROFILE_VAR}=cluster needs {S3_ENDPOINT_VAR}, the S3 API's URL "
                "(on AWS https://s3.<region>.amazonaws.com)"
            )
        try:
            settings = S3Settings.from_endpoint_url(
                self.s3_endpoint.strip(),
                access_key_id=self.s3_access_key_id,
                secret_access_key=self.s3_secret_access_key,
                region=self.s3_region,
            )
        except ValueError as error:
            raise SettingError(f"{S3_ENDPOINT_VAR}: {error}") from None
        return S3Prefix(
            f"{bucket_url}/{name}", settings, extensions_dir=self.root / "duckdb_extensions"
        )

    def model_registry(self, model: str) -> ModelRegistry:
        """A model's registry: in the data folder, or in the bucket with its production pointer in
        Postgres (unified_assets.model_registry)."""
        if not self.is_cluster:
            return ModelRegistry.in_folder(self.models_dir, model)
        return ModelRegistry.in_bucket(self.bucket_place("models"), self.postgres(), model)

    def handoff_place(self) -> Place:
        """Where the tables steps hand each other are published: the hand-off folder, or `<bucket>/ml`."""
        return self.bucket_place("ml") if self.is_cluster else LocalFolder(self.handoff_dir)

    def operations_place(self) -> Place:
        """Where the business-event assets publish: the operations folder, or `<bucket>/operations`."""
        if self.is_cluster:
            return self.bucket_place("operations")
        return LocalFolder(self.operations_dir)

    def ducklake(self) -> DuckLakeWarehouse:
        """The cluster profile's warehouse: catalog in Postgres, data files under <bucket>/warehouse."""
        return DuckLakeWarehouse(self.postgres(), self.bucket_place("warehouse"))

    def dbt_target(self) -> str:
        """The profiles.yml output dbt builds with: the DuckDB file, or the DuckLake."""
        return "cluster" if self.is_cluster else "local"

    def dbt_vars(self) -> dict[str, str]:
        """The locations dbt reads and writes, as `--vars` (profiles.yml and the sources use them; run
        by hand, dbt falls back to the defaults in dbt_project.yml, the project's data/ folder). No
        secret: those reach dbt in its environment (`dbt_environment`)."""
        if not self.is_cluster:
            return {
                "lake_dir": str(self.lake_dir),
                "handoff_dir": str(self.handoff_dir),
                "warehouse_path": str(self.warehouse_path),
            }
        warehouse = self.bucket_place("warehouse")
        s3 = warehouse.settings
        return {
            "lake_dir": self.bucket_place("lake").url,
            "handoff_dir": self.bucket_place("ml").url,
            "warehouse_data_path": warehouse.url + "/",
            "bucket_url": self.bucket_url.strip().rstrip("/"),
            "extension_dir": str(extension_directory(warehouse.extensions_dir)),
            "s3_endpoint": s3.endpoint,
            "s3_region": s3.region,
            "s3_url_style": s3.url_style,
            "s3_use_ssl": str(s3.use_ssl).lower(),
            "scratch_dir": str(self.root / "_dbt_spill"),
        }

    def dbt_environment(self) -> dict[str, str]:
        """The secrets dbt's connection needs, as the variables profiles.yml reads: the bucket's keys and
        the catalog's libpq settings in the cluster profile, nothing locally."""
        if not self.is_cluster:
            return {}
        return {
            **self.postgres().libpq_environment(),
            "AWS_ACCESS_KEY_ID": self.s3_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_access_key,
        }
