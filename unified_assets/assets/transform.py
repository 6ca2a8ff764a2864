"""The dbt project as Dagster assets: staging, intermediate and mart models, dbt tests as asset checks.

`dbt build` runs models and their tests together, so every dbt test shows up in the UI as a check on
its model. dbt is the only process that writes the warehouse file: every dbt asset is in the `warehouse`
pool, which the local instance limits to one step at a time (deploy/dagster.yaml), and dbt itself waits
for the file's lock rather than failing (profiles.yml).
"""

import os
import shutil
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    Config,
    Failure,
    FreshnessPolicy,
)
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from pydantic import Field

from unified_assets import settings
from unified_assets.assets.automation import BUILD_WHILE_MISSING, rebuild_when_upstream_changes
from unified_assets.assets.raw import OWNER
from unified_assets.confined_duckdb import confined_duckdb

DBT_PROJECT_DIR = settings.PROJECT_ROOT / "dbt_project"
WAREHOUSE_POOL = "warehouse"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def open_warehouse() -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse dbt builds, reaching no file outside the data folder, or
    a failure saying what to materialize when it has not been built yet."""
    path = settings.warehouse_path()
    if not path.exists():
        raise Failure(
            description=f"the warehouse {path} has not been built yet: materialize the transform "
            "group (dbt) first"
        )
    return confined_duckdb(path, allowed=[settings.data_dir()], read_only=True)


def dbt_cli() -> DbtCliResource:
    """The dbt CLI installed beside this interpreter: dagster-dbt looks for `dbt` on PATH, which a
    virtual environment that was never activated does not provide."""
    beside_python = Path(sys.executable).parent / "dbt"
    executable = str(beside_python) if beside_python.exists() else "dbt"
    return DbtCliResource(project_dir=dbt_project, dbt_executable=executable)


def ensure_manifest(project: DbtProject) -> None:
    """`@dbt_assets` reads the manifest when definitions load, so it must exist and be current: it is
    parsed when missing or older than any file of the dbt project (a model edited under `dagster dev`
    shows up on reload). Every step process loads definitions, so an up-to-date manifest is not parsed
    again. Parsing uses the dbt beside this interpreter: dagster-dbt's own preparer needs it on PATH."""
    if _manifest_is_stale(project):
        # dagster-dbt's guard against several processes parsing at once.
        run_with_concurrent_update_guard(project.manifest_path, _parse, project=project)


DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


def _manifest_is_stale(project: DbtProject) -> bool:
    """Walks the project's own files only: dbt's output folders are skipped without being entered, since
    every process that loads definitions pays for this walk and `target/` holds one folder per build."""
    if not project.manifest_path.exists():
        return True
    written = project.manifest_path.stat().st_mtime
    for folder, subfolders, files in os.walk(project.project_dir):
        if Path(folder) == Path(project.project_dir):
            subfolders[:] = [name for name in subfolders if name not in DBT_OUTPUT_DIRS]
        if any(os.stat(os.path.join(folder, name)).st_mtime > written for name in files):
            return True
    return False


# dagster-dbt gives every `dbt build` a target folder of its own (compiled SQL, manifest, run results:
# several MB), and a platform that rebuilds on every change would fill its disk with them. The newest are
# kept for debugging; older ones go once nothing can still be writing them.
KEEP_BUILD_TARGETS = 20
BUILD_TARGET_MIN_AGE_S = 3600


def prune_build_targets(
    target_dir: Path, keep: int = KEEP_BUILD_TARGETS, min_age_s: float = BUILD_TARGET_MIN_AGE_S
) -> list[Path]:
    """Remove the build target folders beyond the newest `keep` that are older than `min_age_s`; returns
    what was removed. dbt's own files in `target/` (the parsed manifest the definitions read) are files,
    not folders, and are never touched."""
    if not target_dir.is_dir():
        return []
    builds = sorted(
        (path for path in target_dir.iterdir() if path.is_dir() and not path.is_symlink()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    cutoff = time.time() - min_age_s
    removed = [path for path in builds[keep:] if path.stat().st_mtime < cutoff]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _parse(project: DbtProject) -> None:
    dbt_cli().cli(["parse", "--quiet"], target_path=project.target_path).wait()


ensure_manifest(dbt_project)


# The marts are meant to be rebuilt once a day: warn when a day has been missed by a few hours, fail when
# the data is more than a day and a half old.
MART_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)


class UnifiedDbtTranslator(DagsterDbtTranslator):
    """Models are keyed by their layer folder (`staging/stg_...`) and seeds as `seeds/<name>`, all in the
    `transform` group; the marts carry the freshness SLA users rely on."""

    def get_asset_spec(self, manifest, unique_id, project) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        is_seed = manifest["nodes"].get(unique_id, {}).get("resource_type") == "seed"
        condition = BUILD_WHILE_MISSING if is_seed else rebuild_when_upstream_changes()
        spec = spec.replace_attributes(automation_condition=condition)
        if spec.key.path[0] == "marts":
            spec = spec.replace_attributes(freshness_policy=MART_FRESHNESS)
        return spec

    def get_asset_check_spec(
        self, asset_spec, manifest, unique_id, project
    ) -> AssetCheckSpec | None:
        """A dbt test is requested whenever automation requests its own model (`dbt build` runs them
        together anyway), so what reads the model can count on the test in the same tick: a first build
        is one run, not a layer per tick waiting for tests that have never run."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        with_its_model = AutomationCondition.any_deps_match(
            AutomationCondition.will_be_requested()
        ).allow(AssetSelection.assets(asset_spec.key))  # not a model a relationships test refers to
        return spec._replace(automation_condition=with_its_model.with_label("with its model"))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        if dbt_resource_props["resource_type"] == "seed":
            return AssetKey(["seeds", dbt_resource_props["name"]])
        layer = dbt_resource_props["fqn"][1]
        return AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return [OWNER]


class DbtBuildConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description=(
            "Rebuild the incremental staging models from the whole lake (dbt --full-refresh): after a "
            "model's columns change, or when partition files were removed from the lake by hand."
        ),
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=UnifiedDbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    # dbt resolves relative paths from its own folder; hand it the data folder this process uses.
    os.environ[settings.DATA_DIR_VAR] = str(settings.data_dir())
    # A subset (automation builds what changed) runs a test only when every model it reads is built in
    # the subset or upstream of it: dbt's default would also run a relationships test of a model outside
    # the subset that merely refers to one inside, and that model may not exist yet.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    target_dir = Path(dbt_project.project_dir) / dbt_project.target_path
    if removed := prune_build_targets(target_dir):
        context.log.info(f"Removed {len(removed)} old dbt build folders from {target_dir}")
    yield from dbt.cli(args, context=context).stream()
