"""The dbt project as Dagster sees it: where it is, when its manifest is made, and how its nodes are named.

The manifest is made explicitly (`scripts/bootstrap` runs `python -m unified_assets.dbt_manifest`) and,
under `dagster dev`, again whenever a file of the dbt project is newer than it, so an edited model shows up
on reload. Nothing is parsed at import: `dbt_project()` is a cached factory, called when definitions are
built. Every run process under `dagster dev` builds definitions, so `prepare_if_dev` is asked only when the
manifest is stale, found by a walk over the project's files: unconditionally, it parses in every process.

The naming rules (`DbtLayers`) live here rather than in the transform domain because other domains read
dbt models: they take a model's key from the manifest with `dbt_model_key`, never spelled by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from functools import cache, cached_property
from importlib.metadata import version as installed_version
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    FreshnessPolicy,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
)
from dagster_dbt.errors import DagsterDbtManifestNotFoundError
from packaging.version import Version

from unified_assets.dbt_manifest import DBT_PROJECT_DIR, dbt_executable, manifest_is_stale
from unified_assets.lib.automation import BUILD_WHILE_MISSING, rebuild_when_upstream_changes
from unified_assets.lib.keys import DATA_PLATFORM


class DbtProjectFolder(DbtProject):
    """The project, recorded in asset metadata as its folder. dagster-dbt keeps the project object on
    every dbt asset for its own use (large subsets are selected through a selectors file in a copy of it);
    the UI hides the manifest and translator it keeps beside it, but showed this one as
    "[DbtProject] (unserializable)". Being path-like, it is recorded as the path it stands for."""

    def __fspath__(self) -> str:
        return os.fspath(self.project_dir)


@cache
def dbt_project() -> DbtProject:
    """The project. Under `dagster dev` its manifest is re-made when stale (dagster-dbt's
    `prepare_if_dev`, asked only when a file is newer than the manifest); elsewhere the manifest must have
    been made (`scripts/bootstrap` does it)."""
    project = DbtProjectFolder(project_dir=DBT_PROJECT_DIR)
    if manifest_is_stale(project.project_dir, project.manifest_path):
        project.prepare_if_dev()
    if not project.manifest_path.exists():
        raise DagsterDbtManifestNotFoundError(
            f"no dbt manifest at {project.manifest_path}: run scripts/bootstrap (or "
            "`python -m unified_assets.dbt_manifest`) to parse the dbt project"
        )
    return project


class DbtCli(DbtCliResource):
    """dagster-dbt's resource, told dbt's version rather than asking: dagster-dbt runs `dbt --version` in
    every step that invokes dbt (about 3 s on two cores, a quarter of a one-day rebuild). The executable is
    the dbt installed beside this interpreter, so its version is the installed dbt-core's."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(installed_version("dbt-core"))


def dbt_cli_resource() -> DbtCliResource:
    return DbtCli(project_dir=dbt_project(), dbt_executable=dbt_executable())


# The marts are meant to be rebuilt once a day: warn when a day has been missed by a few hours, fail when
# the data is more than a day and a half old.
MART_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)


class DbtLayers(DagsterDbtTranslator):
    """Models are keyed by their layer folder (`staging/stg_...`) and seeds as `seeds/<name>`, all in the
    `transform` group; the marts carry the freshness SLA users rely on; each links to its SQL file."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

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
        return spec._replace(
            automation_condition=with_its_model.with_label("with its model"),
            description=spec.description or describe_dbt_test(manifest["nodes"][unique_id]),
        )

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
        return [DATA_PLATFORM]


@cache
def _models_by_name() -> dict[str, Mapping[str, Any]]:
    manifest = json.loads(dbt_project().manifest_path.read_text())
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }


# What each generic test asserts, in words, from its arguments (dbt's own and the project's macros in
# tests/generic/). A test written with a `description:` in YAML keeps its own.
TEST_SENTENCES = {
    "not_null": "`{column_name}` is never null.",
    "unique": "No two rows share a `{column_name}`.",
    "accepted_values": "`{column_name}` is one of {values}.",
    "relationships": "Every `{column_name}` is a `{field}` of {to}.",
    "non_negative": "`{column_name}` is never negative.",
    "between": "`{column_name}` lies between {min_value} and {max_value}.",
    "unique_combination_of_columns": "No two rows share the same {columns}.",
    "resolved_share_at_least": (
        "In each `{group_by}`, the share of rows whose `{column_name}` resolved is at least the "
        "project's `identity_min_resolved_share`."
    ),
}


def describe_dbt_test(test_node: Mapping[str, Any]) -> str:
    """A sentence saying what a dbt generic test checks, so the UI's check list reads as the rules
    themselves rather than "No description provided"."""
    metadata = test_node.get("test_metadata") or {}
    arguments = {
        key: value for key, value in (metadata.get("kwargs") or {}).items() if key != "model"
    }
    sentence = TEST_SENTENCES.get(metadata.get("name", ""))
    if sentence is None:
        return f"dbt test {test_node['name']}."
    if "to" in arguments:
        arguments["to"] = arguments["to"].removeprefix("ref('").removesuffix("')")
    return sentence.format_map(
        {
            key: ", ".join(map(str, value)) if isinstance(value, list) else value
            for key, value in arguments.items()
        }
    )


def dbt_model_key(name: str) -> AssetKey:
    """The asset key of dbt model `name`, as the manifest and `DbtLayers` make it (what dagster-dbt's
    `get_asset_key_for_model` returns for the transform assets), so a renamed or moved model fails here,
    when definitions load, instead of leaving a dependency on a key nothing materializes."""
    node = _models_by_name().get(name)
    if node is None:
        raise KeyError(f"dbt model {name!r} is not in the manifest {dbt_project().manifest_path}")
    return DbtLayers().get_asset_key(node)
