"""What users see in the UI: every asset named, described, owned, grouped and kinded; SLAs declared."""

import difflib
import os
from pathlib import Path

from dagster import AssetKey

from unified_assets.definitions import defs
from unified_assets_tests.support.definitions_snapshot import snapshot

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
UPDATE_VAR = "UNIFIED_ASSETS_UPDATE_SNAPSHOT"

GRAPH = defs.resolve_asset_graph()
ASSETS = {
    key: GRAPH.get(key) for key in GRAPH.get_all_asset_keys() if GRAPH.get(key).is_materializable
}


GROUPS = {"ingestion", "transform", "ml", "operations"}


def test_every_asset_is_described_owned_grouped_and_kinded():
    for key, node in ASSETS.items():
        assert node.description, key
        assert node.owners, key
        assert node.group_name in GROUPS, key
        assert node.kinds, key
    assert {node.group_name for node in ASSETS.values()} == GROUPS


def test_the_graph_runs_raw_to_staging_to_marts():
    demand = ASSETS[AssetKey(["marts", "unified_demand"])]
    upstream = set(GRAPH.upstream_key_iterator(demand.key))
    assert AssetKey(["intermediate", "int_customer_identity"]) in upstream
    staging = ASSETS[AssetKey(["staging", "stg_accounting__invoices"])]
    assert set(staging.parent_keys) == {AssetKey(["raw", "invoices"])}


def test_the_forecast_follows_the_model_which_trains_on_a_copy_of_weekly_demand():
    training_set = ASSETS[AssetKey(["ml", "demand_training_set"])]
    assert AssetKey(["marts", "sku_demand_weekly"]) in training_set.parent_keys
    model = ASSETS[AssetKey(["ml", "demand_forecast_model"])]
    assert set(model.parent_keys) == {training_set.key}
    assert training_set.pools == {"warehouse"} and not model.pools, (
        "training holds no warehouse slot"
    )
    forecast = ASSETS[AssetKey(["ml", "demand_forecast"])]
    assert model.key in forecast.parent_keys
    assert model.group_name == forecast.group_name == "ml"


def test_business_events_start_the_operations_assets():
    sensors = {sensor.name: sensor for sensor in defs.sensors}
    targets = {
        name: {
            key.path[-1]
            for target in sensors[name].targets
            for key in target.resolvable_to_job.selection.resolve(GRAPH)
        }
        for name in ("p1_tickets", "books_closed", "new_source_data")
    }
    assert targets["p1_tickets"] == {"enriched_p1_tickets"}
    assert targets["books_closed"] == {"month_end_close"}
    assert targets["new_source_data"] == {"invoices", "purchase_orders", "support_tickets"}


def test_raw_assets_and_marts_declare_freshness():
    with_sla = {key.path[0] for key, node in ASSETS.items() if node.freshness_policy is not None}
    assert with_sla == {"raw", "marts"}


def test_dbt_tests_are_asset_checks():
    checked = {key.asset_key.path[0] for key in GRAPH.asset_check_keys}
    assert {"staging", "intermediate", "marts"} <= checked


def test_the_definitions_match_their_reviewed_snapshot():
    """Any change to what users see (an asset, a dependency, a check, a sensor, a schedule) is one diff of
    snapshots/definitions.txt, reviewed with the code that caused it."""
    current = snapshot(defs)
    if os.environ.get(UPDATE_VAR):
        SNAPSHOT.write_text(current)
    expected = SNAPSHOT.read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            current.splitlines(keepends=True),
            "snapshots/definitions.txt",
            "the definitions now",
        )
    )
    assert not diff, f"{diff}\nIf the change is intended: {UPDATE_VAR}=1 scripts/test -k snapshot"


def test_every_asset_links_to_the_code_that_makes_it():
    for key, node in ASSETS.items():
        references = node.metadata["dagster/code_references"].code_references
        files = [reference.file_path for reference in references]
        assert all(Path(file).is_file() for file in files), (key, files)
        if key.path[0] in ("staging", "intermediate", "marts"):
            assert any(file.endswith(f"/{key.path[-1]}.sql") for file in files), (key, files)


def test_every_check_says_what_it_checks():
    undescribed = [
        key.to_user_string()
        for key in GRAPH.asset_check_keys
        if not (GRAPH.get_check_spec(key).description or "").strip()
    ]
    assert undescribed == []


def test_a_dbt_test_is_described_by_its_arguments():
    from unified_assets.lib.dbt_project import describe_dbt_test

    relationships = {
        "name": "relationships_int_tickets_customer_id",
        "test_metadata": {
            "name": "relationships",
            "kwargs": {"column_name": "customer_id", "to": "ref('int_customers')", "field": "id"},
        },
    }
    assert describe_dbt_test(relationships) == "Every `customer_id` is a `id` of int_customers."
    accepted = {
        "name": "t",
        "test_metadata": {
            "name": "accepted_values",
            "kwargs": {"column_name": "status", "values": ["open", "solved"]},
        },
    }
    assert describe_dbt_test(accepted) == "`status` is one of open, solved."
    assert describe_dbt_test({"name": "assert_totals_match"}) == "dbt test assert_totals_match."


def test_the_code_location_loads_as_dagster_dev_loads_it_and_says_nothing_untoward():
    """Importing `defs` is not all: Dagster also refuses a module holding two Definitions objects, and
    a [tool.dg] name that differs from the workspace's repeats a warning in every process."""
    import subprocess
    import sys

    from unified_assets.settings import PROJECT_ROOT

    validate = [sys.executable, "-m", "dagster", "definitions", "validate"]
    done = subprocess.run(
        [*validate, "-m", "unified_assets.definitions"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "WARNING" not in output, output[-3000:]


def test_every_pooled_step_holds_its_pools_lock():
    """Dagster's slot claim can admit two steps to a one-slot pool (unified_assets/pool_locks.py), so the
    pool's lock is what keeps the warehouse to one writer and each vendor to one extraction."""
    ops = defs.resolve_implicit_global_asset_job_def().all_node_defs
    pooled = {op.name: op for op in ops if getattr(op, "pool", None)}
    assert {"dbt_models", "raw__invoices", "ml__demand_forecast"} <= set(pooled)
    unheld = [
        name
        for name, op in pooled.items()
        if not getattr(op.compute_fn.decorated_fn, "holds_its_pool", False)
    ]
    assert not unheld, f"pooled steps without @holds_its_pool: {unheld}"
