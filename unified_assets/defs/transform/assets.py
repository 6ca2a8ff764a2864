"""The dbt project as Dagster assets: staging, intermediate and mart models, dbt tests as asset checks.

`dbt build` runs models and their tests together, so every dbt test shows up in the UI as a check on
its model. dbt is the only process that writes the warehouse file: every dbt asset is in the `warehouse`
pool, which the local instance limits to one step at a time (deploy/dagster.yaml), and dbt itself waits
for the file's lock rather than failing (profiles.yml). Where the lake and the warehouse are reaches dbt
as `--vars` from the storage resource.
"""

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetExecutionContext, Config, Output
from dagster_dbt import DbtCliInvocation, DbtCliResource, dbt_assets
from pydantic import Field

from unified_assets.lib.dbt_project import DbtLayers, dbt_project
from unified_assets.lib.pod_resources import pod_resources
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL

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


PARTIAL_PARSE = "partial_parse.msgpack"


def parse_state_for(target_dir: Path, dbt_vars: dict[str, str]) -> Path:
    """Where the parse state of builds with these `--vars` is kept. dbt throws its partial-parse state
    away when the vars differ from the ones it was saved with (the warehouse path is also in the
    profile), so one state per set of vars lets every build after the first parse only what changed."""
    digest = hashlib.sha256(json.dumps(dbt_vars, sort_keys=True).encode()).hexdigest()[:16]
    return target_dir / f"partial_parse-{digest}.msgpack"


def seed_parse_state(state: Path, build_target: Path) -> None:
    """Give a build folder the state saved by the last build with the same vars, if any."""
    if state.exists():
        build_target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, build_target / PARTIAL_PARSE)


def keep_parse_state(build_target: Path, state: Path) -> None:
    """Save the state a build left for the next one, whole or not at all (written beside, then renamed),
    so two builds finishing together leave one or the other."""
    written = build_target / PARTIAL_PARSE
    if not written.exists():
        return
    staging = state.with_name(f"{state.name}.{os.getpid()}.tmp")
    shutil.copyfile(written, staging)
    os.replace(staging, state)


ROW_COUNT_LOG = re.compile(r"row_count (\d+)")


def with_row_counts(invocation: DbtCliInvocation, context: AssetExecutionContext) -> Iterator:
    """dagster-dbt's events for a build as they come, each model's and seed's materialization with the
    row count dbt logged for it (`row_count <n>`, from macros/log_table_facts.sql; the columns and their
    lineage, logged there too, dagster-dbt attaches itself)."""
    row_counts: dict[str, int] = {}
    for dbt_event in invocation.stream_raw_events():
        info, node = dbt_event.raw_event["info"], dbt_event.raw_event["data"].get("node_info", {})
        if info["name"] == "JinjaLogInfo" and (logged := ROW_COUNT_LOG.fullmatch(info["msg"])):
            row_counts[node["unique_id"]] = int(logged[1])
            continue
        for event in dbt_event.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            unique_id = event.metadata["unique_id"].value if isinstance(event, Output) else None
            if unique_id in row_counts:
                event = event.with_metadata(
                    {**event.metadata, "dagster/row_count": row_counts[unique_id]}
                )
            yield event


@contextmanager
def environment_for_dbt(variables: dict[str, str]) -> Iterator[None]:
    """Set `variables` in this process's environment while dbt is started: dagster-dbt gives dbt a copy
    of the environment and takes no other, and in the cluster profile the storage resource's secrets
    (resolved by Dagster from EnvVar) are what profiles.yml reads."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class DbtBuildConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description=(
            "Rebuild the incremental staging models from the whole lake (dbt --full-refresh): after a "
            "model's columns change, or when partition files were removed from the lake by hand."
        ),
    )


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=DbtLayers(),
    pool=WAREHOUSE_POOL,
    # The benchmark world's build (2.1M invoice lines) peaked at 1,252 MB (docs/benchmarks.md, *Scale*).
    op_tags=pod_resources(cpu="1", memory="1536Mi", memory_limit="3Gi"),
)
@holds_its_pool
def dbt_models(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    storage: PlatformStorage,
    config: DbtBuildConfig,
):
    args = ["build", "--target", storage.dbt_target(), "--vars", json.dumps(storage.dbt_vars())]
    if config.full_refresh:
        args.append("--full-refresh")
    project = dbt_project()
    target_dir = Path(project.project_dir) / project.target_path
    if removed := prune_build_targets(target_dir):
        context.log.info(f"Removed {len(removed)} old dbt build folders from {target_dir}")
    # Named as dagster-dbt names its build folders, so pruning treats them alike.
    build_target = target_dir / f"dbt_models-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    state = parse_state_for(target_dir, storage.dbt_vars())
    seed_parse_state(state, build_target)
    try:
        with environment_for_dbt(storage.dbt_environment()):
            invocation = dbt.cli(args, context=context, target_path=build_target)
        yield from with_row_counts(invocation, context)
    finally:
        keep_parse_state(build_target, state)
