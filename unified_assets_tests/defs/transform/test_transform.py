"""The dbt staging layer, built by Dagster from landed raw data, against the simulator's ground truth."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from saas_simulator.clock import SimClock
from saas_simulator.world import World
from saas_simulator.zendesk import DEFAULT_EXPORT_LAG_S
from unified_assets.dbt_manifest import manifest_is_stale
from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.defs.ingestion.landed_checks import no_uncastable_values
from unified_assets.defs.transform.assets import dbt_models, prune_build_targets
from unified_assets.lake import Lake, RawTable
from unified_assets.lib.dbt_project import dbt_cli_resource, dbt_project
from unified_assets.lib.storage import PlatformStorage
from unified_assets.lib.warehouse import WAREHOUSE_POOL
from unified_assets.settings import PROJECT_ROOT
from unified_assets.sources import quickbooks
from unified_assets_tests.support.resources import dbt_resources, source_resources
from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving
from unified_assets_tests.support.warehouse import copy_of_warehouse

INVOICES = AssetKey(["raw", "invoices"])
HISTORY = {
    "dagster/asset_partition_range_start": "2026-01-01",
    "dagster/asset_partition_range_end": FROZEN_AT.date().isoformat(),
}


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory, demo_config):
    """The whole simulated history landed and `dbt build` run over it, once for this module:
    (world, storage, the build's result)."""
    storage = PlatformStorage(data_dir=str(tmp_path_factory.mktemp("warehouse") / "data"))
    world = frozen_world(demo_config)
    with serving(world) as server:
        landed = materialize(raw_assets, resources=source_resources(server, storage), tags=HISTORY)
    assert landed.success
    built = materialize([dbt_models], resources=dbt_resources(storage))
    return world, storage, built


def query(storage: PlatformStorage, sql: str) -> list[tuple]:
    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def dbt_by_hand(storage: PlatformStorage, args: list[str], **more_vars: Any):
    """A dbt command run as a person would, told where `storage` keeps the lake and the warehouse (and
    any other `more_vars`); returns the finished invocation."""
    dbt_vars = json.dumps({**storage.dbt_vars(), **more_vars})
    invocation = dbt_cli_resource().cli([*args, "--vars", dbt_vars], raise_on_error=False)
    invocation.wait()
    return invocation


def truth(world, system: str):
    """What a correct extraction at FROZEN_AT can see. Zendesk's export serves each ticket's current
    state but holds back the last minute, so a ticket updated in that minute is not served at all yet."""
    frame = world.ground_truth(system, as_of=FROZEN_AT)
    if system == "support":
        horizon = FROZEN_AT - timedelta(seconds=DEFAULT_EXPORT_LAG_S)
        frame = frame[frame["updated_at"] <= horizon]
    return frame


def test_dbt_build_succeeds_with_every_check_passing(built_warehouse):
    _, _, built = built_warehouse
    assert built.success
    evaluations = built.get_asset_check_evaluations()
    assert len(evaluations) >= 40
    failed = [e.check_name for e in evaluations if not e.passed]
    assert failed == []
    keys = {event.asset_key for event in built.get_asset_materialization_events()}
    assert AssetKey(["staging", "stg_accounting__invoices"]) in keys


def test_every_built_model_shows_its_row_count_and_column_types(built_warehouse):
    _, storage, built = built_warehouse
    for event in built.get_asset_materialization_events():
        metadata = event.materialization.metadata
        schema = {"seeds": "reference"}.get(event.asset_key.path[0], event.asset_key.path[0])
        table = event.asset_key.path[-1]
        [(rows,)] = query(storage, f'select count(*) from "{schema}"."{table}"')
        assert metadata["dagster/row_count"].value == rows, event.asset_key
        described = {c.name: c.type for c in metadata["dagster/column_schema"].schema.columns}
        [(columns,)] = query(
            storage,
            "select count(*) from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{table}'",
        )
        assert len(described) == columns and "?" not in described.values(), event.asset_key


def test_a_mart_column_traces_back_to_the_columns_it_is_computed_from(built_warehouse):
    """Column lineage, derived by dagster-dbt from the compiled SQL and the parents' columns."""
    _, _, built = built_warehouse
    [weekly] = [
        event.materialization.metadata
        for event in built.get_asset_materialization_events()
        if event.asset_key == AssetKey(["marts", "sku_demand_weekly"])
    ]
    lineage = weekly["dagster/column_lineage"].column_lineage.deps_by_column
    sources = {(dep.asset_key, dep.column_name) for dep in lineage["invoiced_quantity"]}
    assert (AssetKey(["marts", "sku_demand_daily"]), "invoiced_quantity") in sources


def test_the_dbt_project_shows_as_its_folder_not_unserializable():
    spec = next(iter(dbt_models.specs))
    assert isinstance(spec.metadata["dagster_dbt/project"], os.PathLike)
    assert os.fspath(spec.metadata["dagster_dbt/project"]) == str(PROJECT_ROOT / "dbt_project")


# The logic dbt unit tests pin down with given/expect rows (`unit_tests:` in the models' YAML): latest
# versions and currency conversion in staging, identity resolution, the open order book and the demand
# series. `dbt build` runs each before its model (the module's build ran them) and does not build a model
# whose unit test fails; dagster-dbt shows them in the step's log, not as asset checks.
UNIT_TESTED_MODELS = {
    "stg_accounting__invoices",
    "stg_accounting__invoice_lines",
    "stg_purchasing__purchase_order_lines",
    "int_customer_identity",
    "int_product_identity",
    "int_open_order_book",
    "sku_demand_daily",
    "sku_demand_weekly",
}


def test_the_dbt_unit_tests_pass(built_warehouse):
    """`dbt build` runs each model's unit tests before the model (they are not asset checks, so they
    are read from the build's own run results)."""
    _, _, built = built_warehouse
    results = [
        result
        for result in build_run_results(built)["results"]
        if result["unique_id"].startswith("unit_test.")
    ]
    assert {r["unique_id"].split(".")[2] for r in results} == UNIT_TESTED_MODELS
    failed = [r["unique_id"].rsplit(".", 1)[-1] for r in results if r["status"] != "pass"]
    assert failed == []


def build_run_results(built) -> dict:
    """The run results dbt wrote for the dbt step of the run `built` (its build folder is named after
    the run: `dbt_models-<run id>-<suffix>`)."""
    project = dbt_project()
    target_dir = Path(project.project_dir) / project.target_path
    [folder] = target_dir.glob(f"dbt_models-{built.run_id[:7]}-*")
    return json.loads((folder / "run_results.json").read_text())


def test_staging_keeps_exactly_the_latest_version_of_every_record(built_warehouse):
    world, storage, _ = built_warehouse
    for system, model, key in [
        ("accounting", "stg_accounting__invoices", "invoice_id"),
        ("purchasing", "stg_purchasing__purchase_orders", "purchase_order_id"),
        ("support", "stg_support__tickets", "ticket_id"),
    ]:
        expected = truth(world, system)
        rows = query(storage, f"select {key}, updated_at from staging.{model}")
        assert {(i, t.timestamp()) for i, t in rows} == {
            (i, t.timestamp()) for i, t in zip(expected["id"], expected["updated_at"], strict=True)
        }, model


def test_deleted_tickets_and_voided_invoices_are_flagged_not_dropped(built_warehouse):
    world, storage, _ = built_warehouse
    tickets = truth(world, "support")["record"]
    deleted = sum(1 for ticket in tickets if ticket["status"] == "deleted")
    assert deleted > 0
    assert query(storage, "select count(*) from staging.stg_support__tickets where is_deleted") == [
        (deleted,)
    ]
    voided = sum(
        1 for i in truth(world, "accounting")["record"] if i.get("PrivateNote") == "Voided"
    )
    assert voided > 0
    assert query(
        storage,
        "select count(*) from staging.stg_accounting__invoices where invoice_status = 'voided'",
    ) == [(voided,)]


@pytest.fixture
def own_copy(built_warehouse, tmp_path):
    """The module's built data folder copied whole (lake included) for a test that changes it:
    (world, storage over the copy)."""
    world, built, _ = built_warehouse
    return world, copy_of_warehouse(built, tmp_path, with_lake=True)


INJECTED_DAY = date(2026, 3, 10)


def inject_invoice(world, storage, changes: dict[str, Any], day: date = INJECTED_DAY) -> list[dict]:
    """The lake's file for `day` with one more invoice (a copy of a real one with `changes`), as if the
    API had sent it; returns the day's records without it."""
    bad = {**dict(truth(world, "accounting")["record"].iloc[0]), **changes}
    bad["MetaData"] = {**bad["MetaData"], "LastUpdatedTime": f"{day.isoformat()}T12:00:00Z"}
    lake = storage.lake()
    day_file = lake.partition_file("invoices", day)
    records = [
        json.loads(raw) for (raw,) in duckdb.sql(f"select _raw from '{day_file}'").fetchall()
    ]
    land_invoices(lake, day, [*records, bad])
    return records


# What an injected invoice can change: the invoice models and everything built from them (dbt's
# `source:accounting.invoices+`). Building only these keeps each test to the half of the project it
# exercises.
FROM_INVOICES = AssetSelection.assets(
    AssetKey(["staging", "stg_accounting__invoices"]),
    AssetKey(["staging", "stg_accounting__invoice_lines"]),
).downstream()


def build_from_invoices(storage):
    return materialize(
        [dbt_models],
        resources=dbt_resources(storage),
        selection=FROM_INVOICES,
        raise_on_error=False,
    )


def land_invoices(lake: Lake, day: date, records: list[dict[str, Any]]) -> None:
    """Publish `records` as the day's invoice partition, as a re-extraction of that day would."""
    with lake.open_staging("invoices") as staging:
        staging.append(records)
        staging.finish()
        lake.publish_days(
            RawTable("invoices", quickbooks.RAW_COLUMNS), staging, [day], datetime.now(UTC)
        )


def test_a_bad_source_record_turns_its_check_red_until_the_source_drops_it(own_copy):
    """A negative invoice total (a bad record from the API) fails `non_negative`, and the run fails.
    Once the day is extracted again without it (fixed at the source), the next incremental build takes
    it out of staging and is green."""
    world, storage = own_copy
    day_without_it = inject_invoice(
        world, storage, {"Id": "999999", "TotalAmt": -50.0, "Balance": 0}
    )
    result = build_from_invoices(storage)
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert any("non_negative" in name and "total_amount" in name for name in failed), failed

    land_invoices(storage.lake(), INJECTED_DAY, day_without_it)
    assert build_from_invoices(storage).success
    gone = "select count(*) from staging.{} where invoice_id = '999999'"
    assert query(storage, gone.format("stg_accounting__invoices")) == [(0,)]
    assert query(storage, gone.format("stg_accounting__invoice_lines")) == [(0,)]


def test_a_value_that_does_not_cast_is_counted_and_kept_out_of_staging(own_copy):
    """A total in a European number format is not read as a missing total: the invoice stays out of
    staging, the build goes on, and the check on raw/invoices names the field and the invoice."""
    world, storage = own_copy
    lake = storage.lake()
    assert no_uncastable_values(lake, "invoices").passed
    inject_invoice(world, storage, {"Id": "999998", "TotalAmt": "1.234,50"})
    result = build_from_invoices(storage)
    check = no_uncastable_values(lake, "invoices")
    kept_out = query(
        storage,
        "select (select count(*) from staging.stg_accounting__invoices where invoice_id = '999998'),"
        " (select count(*) from staging.stg_accounting__invoice_lines where invoice_id = '999998')",
    )
    assert result.success, "values that do not cast warn; they do not stop the build"
    assert kept_out == [(0, 0)]
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["records_kept_out"].value == 1
    assert check.metadata["values_by_field"].value == {"TotalAmt": 1}
    assert check.metadata["example_ids"].value == "999998"


def duplicated_line(line: dict) -> list[dict]:
    return [line, line]


def line_without_id(line: dict) -> list[dict]:
    return [{name: value for name, value in line.items() if name != "Id"}]


@pytest.mark.parametrize(
    ("bad_lines", "failing_test"),
    [
        (duplicated_line, "unique_stg_accounting__invoice_lines_invoice_line_id"),
        (line_without_id, "not_null_stg_accounting__invoice_lines_invoice_line_id"),
    ],
)
def test_broken_keys_after_staging_stop_the_marts(own_copy, bad_lines, failing_test):
    """An invoice whose payload repeats a line id (or omits one) would double (or lose) demand
    downstream: the key test on staging fails (ERROR) and dbt builds nothing that depends on it."""
    world, storage = own_copy
    template = dict(truth(world, "accounting")["record"].iloc[0])
    sales_line = next(
        line for line in template["Line"] if line["DetailType"] == "SalesItemLineDetail"
    )
    inject_invoice(world, storage, {"Id": "999997", "Line": bad_lines(sales_line)})
    result = build_from_invoices(storage)
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failing_test in failed
    built = {event.asset_key for event in result.get_asset_materialization_events()}
    assert AssetKey(["staging", "stg_accounting__invoice_lines"]) in built
    downstream_of_lines = {
        AssetKey(["intermediate", "int_invoiced_lines"]),
        AssetKey(["marts", "unified_demand"]),
        AssetKey(["marts", "sku_demand_daily"]),
        AssetKey(["marts", "sku_demand_weekly"]),
    }
    assert not built & downstream_of_lines
    assert AssetKey(["marts", "customer_360"]) in built, (
        "invoice headers are fine: it does not wait"
    )


def test_dbt_source_freshness_reads_when_each_source_was_extracted(built_warehouse):
    _, storage, _ = built_warehouse
    invocation = dbt_by_hand(storage, ["source", "freshness"])
    results = invocation.get_artifact("sources.json")["results"]
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}
    assert statuses == {"invoices": "pass", "purchase_orders": "pass", "support_tickets": "pass"}
    criteria = {r["unique_id"].rsplit(".", 1)[-1]: r["criteria"] for r in results}
    assert criteria["support_tickets"]["error_after"] == {"count": 2, "period": "hour"}
    assert criteria["invoices"]["error_after"] == {"count": 26, "period": "hour"}


HOLD_LOCK = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""


def test_dbt_waits_for_another_process_holding_the_warehouse(built_warehouse):
    """A notebook or CLI holding the file must delay a build, not fail it (DuckDB allows one writer)."""
    _, storage, _ = built_warehouse
    hold_s = 10.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(storage.warehouse_path), str(hold_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = materialize(
            [dbt_models],
            resources=dbt_resources(storage),
            selection=[AssetKey(["staging", "stg_support__tickets"])],  # any model would wait
            raise_on_error=False,
        )
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.success
    assert holder.returncode == 0
    assert waited >= hold_s - 1, "the build should have waited for the lock"


def resolvable_customers(world, source_id: str, hard_flag: str) -> dict[str, str]:
    """A system's customer id -> accounting customer id, for the spellings a normalization recovers
    (the simulator marks the others as hard)."""
    customers = world.customers[~world.customers[hard_flag]]
    return dict(
        zip(customers[source_id].astype(str), customers["qbo_customer_id"].astype(str), strict=True)
    )


def expected_unified_demand(world) -> dict[tuple[str, str], dict[str, float]]:
    """Invoiced USD and ordered quantity per (accounting customer id, SKU), from the simulator's wire
    records and its identity truth: purchase orders count only where purchasing's spelling of the
    customer and product is one a normalization can recover (the simulator marks the others)."""
    expected: dict[tuple[str, str], dict[str, float]] = {}

    def add(key, field, value):
        expected.setdefault(key, {"invoiced": 0.0, "ordered": 0.0})[field] += value

    for invoice in truth(world, "accounting")["record"]:
        if invoice.get("PrivateNote") == "Voided":
            continue
        rate = 1.0 if invoice["CurrencyRef"]["value"] == "USD" else invoice["ExchangeRate"]
        for line in invoice["Line"]:
            if line["DetailType"] == "SalesItemLineDetail":
                sku = line["SalesItemLineDetail"]["ItemRef"]["name"]
                add(
                    (invoice["CustomerRef"]["value"], sku),
                    "invoiced",
                    round(line["Amount"] * rate, 2),
                )

    invoiced_customers = {customer for customer, _ in expected}
    invoiced_skus = {sku for _, sku in expected}
    account_to_customer = resolvable_customers(world, "coupa_customer_account", "coupa_name_hard")
    products = world.products[~world.products["coupa_item_hard"]]
    item_to_sku = dict(zip(products["coupa_item_number"], products["sku"], strict=True))
    for order in truth(world, "purchasing")["record"]:
        customer = account_to_customer.get(order["custom-fields"]["customer-account"])
        if order["status"] == "cancelled" or customer not in invoiced_customers:
            continue
        for line in order["order-lines"]:
            sku = item_to_sku.get(line["item"]["item-number"])
            if sku in invoiced_skus:
                add((customer, sku), "ordered", float(line["quantity"]))
    return expected


def test_unified_demand_matches_the_ground_truth(built_warehouse):
    world, storage, _ = built_warehouse
    expected = expected_unified_demand(world)
    rows = query(
        storage,
        "select customer_id, product_sku, total_invoiced_amount, total_ordered_quantity "
        "from marts.unified_demand",
    )
    landed = {(c, s): {"invoiced": i, "ordered": o} for c, s, i, o in rows}
    with_demand = {key: value for key, value in landed.items() if any(value.values())}
    assert set(with_demand) == set(expected)
    for key, values in expected.items():
        assert with_demand[key]["invoiced"] == pytest.approx(values["invoiced"], abs=0.01), key
        assert with_demand[key]["ordered"] == pytest.approx(values["ordered"]), key


def test_unified_demand_is_aggregated_before_joining(built_warehouse):
    """Regression guard for double counting: pairs with several invoice lines, order lines and tickets
    exist, and their totals still equal the per-source sums."""
    _, storage, _ = built_warehouse
    [(crowded,)] = query(
        storage,
        """
        with lines as (
            select i.accounting_customer_id as customer_id, l.product_sku_text as product_sku,
                   count(*) as invoice_lines, sum(l.amount_usd) as invoiced
            from staging.stg_accounting__invoice_lines l
            join staging.stg_accounting__invoices i using (invoice_id)
            where not l.is_voided
            group by all
        )
        select count(*)
        from marts.unified_demand d
        join lines using (customer_id, product_sku)
        where lines.invoice_lines > 1 and d.ticket_count > 1 and d.total_ordered_quantity > 0
          and abs(d.total_invoiced_amount - lines.invoiced) < 0.01
        """,
    )
    assert crowded > 0


def test_the_daily_demand_series_matches_the_ground_truth(built_warehouse):
    """Invoiced quantity per SKU and day. That the series is dense, with explicit zeros, and that the weekly
    one sums it, are dbt unit tests (sku_demand_daily, sku_demand_weekly)."""
    world, storage, _ = built_warehouse
    expected: dict[tuple[str, str], float] = {}
    for invoice in truth(world, "accounting")["record"]:
        if invoice.get("PrivateNote") == "Voided":
            continue
        for line in invoice["Line"]:
            if line["DetailType"] == "SalesItemLineDetail":
                key = (line["SalesItemLineDetail"]["ItemRef"]["name"], invoice["TxnDate"])
                expected[key] = expected.get(key, 0.0) + line["SalesItemLineDetail"]["Qty"]
    rows = query(
        storage,
        "select product_sku, cast(demand_date as varchar), invoiced_quantity "
        "from marts.sku_demand_daily where invoiced_quantity > 0",
    )
    assert {(sku, day): quantity for sku, day, quantity in rows} == pytest.approx(expected)


def test_identity_coverage_warns_when_too_few_customers_resolve(built_warehouse):
    """On the simulator about 95% of purchasing and support customers resolve (the rest are spellings
    no normalization recovers, or customers not invoiced yet): above the 0.9 default, below 0.99."""
    _, storage, built = built_warehouse
    coverage = [e for e in built.get_asset_check_evaluations() if "resolved_share" in e.check_name]
    assert len(coverage) == 2 and all(e.passed for e in coverage)

    invocation = dbt_by_hand(
        storage, ["test", "--select", "int_customer_identity"], identity_min_resolved_share=0.99
    )
    results = invocation.get_artifact("run_results.json")["results"]
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in results}
    [coverage_test] = [name for name in statuses if name.startswith("resolved_share_at_least")]
    assert statuses[coverage_test] == "warn"
    assert invocation.is_successful(), "a warning does not fail the build"


def usd_reference_rate(currency: str, day: date) -> float:
    """The rate the seed states for `currency` on `day` (the latest row on or before it)."""
    rates = csv.DictReader((PROJECT_ROOT / "dbt_project/seeds/currency_rates.csv").open())
    valid = [
        r for r in rates if r["currency_code"] == currency and r["valid_from"] <= day.isoformat()
    ]
    return float(max(valid, key=lambda r: r["valid_from"])["usd_per_unit"])


def expected_customer_360(world) -> dict[str, dict[str, float]]:
    """Per accounting customer, from the wire records: invoices at their own rate, open purchase orders
    at the seed's reference rate, and non-deleted tickets, for the accounts that resolve."""
    today = datetime.now(UTC).date()
    expected: dict[str, Counter] = defaultdict(Counter)
    for invoice in truth(world, "accounting")["record"]:
        if invoice.get("PrivateNote") == "Voided":
            continue
        customer = expected[invoice["CustomerRef"]["value"]]
        rate = 1.0 if invoice["CurrencyRef"]["value"] == "USD" else invoice["ExchangeRate"]
        customer["invoice_count"] += 1
        customer["lifetime_invoiced_amount"] += round(invoice["TotalAmt"] * rate, 2)
        if invoice["Balance"] != 0:
            balance = round(invoice["Balance"] * rate, 2)
            customer["open_invoice_count"] += 1
            customer["open_invoice_balance"] += balance
            if date.fromisoformat(invoice["DueDate"]) < today:
                customer["past_due_invoice_count"] += 1
                customer["past_due_balance"] += balance

    accounts = resolvable_customers(world, "coupa_customer_account", "coupa_name_hard")
    for order in truth(world, "purchasing")["record"]:
        customer_id = accounts.get(order["custom-fields"]["customer-account"])
        if customer_id not in expected or order["status"] not in ("buyer_hold", "issued"):
            continue
        ordered_on = datetime.fromisoformat(order["created-at"]).date()
        rate = usd_reference_rate(order["currency"]["code"], ordered_on)
        customer = expected[customer_id]
        customer["open_purchase_order_count"] += 1
        for line in order["order-lines"]:
            quantity, price = float(line["quantity"]), float(line["price"])
            customer["open_ordered_quantity"] += quantity
            customer["open_ordered_amount"] += round(quantity * price * rate, 2)

    organizations = resolvable_customers(world, "zendesk_organization_id", "zendesk_name_hard")
    for ticket in truth(world, "support")["record"]:
        customer_id = organizations.get(str(ticket["organization_id"]))
        if customer_id not in expected or ticket["status"] == "deleted":
            continue
        customer = expected[customer_id]
        customer["ticket_count"] += 1
        customer["open_ticket_count"] += ticket["status"] in ("new", "open", "pending", "hold")
        customer["urgent_ticket_count"] += ticket["priority"] == "urgent"
    return expected


CUSTOMER_360_MEASURES = (
    "invoice_count",
    "lifetime_invoiced_amount",
    "open_invoice_count",
    "open_invoice_balance",
    "past_due_invoice_count",
    "past_due_balance",
    "open_purchase_order_count",
    "open_ordered_quantity",
    "open_ordered_amount",
    "ticket_count",
    "open_ticket_count",
    "urgent_ticket_count",
)


def test_customer_360_matches_the_ground_truth(built_warehouse):
    world, storage, _ = built_warehouse
    expected = expected_customer_360(world)
    rows = query(
        storage, f"select customer_id, {', '.join(CUSTOMER_360_MEASURES)} from marts.customer_360"
    )
    landed = {row[0]: dict(zip(CUSTOMER_360_MEASURES, row[1:], strict=True)) for row in rows}
    assert set(landed) == set(expected)
    for customer_id, measures in expected.items():
        for name in CUSTOMER_360_MEASURES:
            assert landed[customer_id][name] == pytest.approx(measures[name], abs=0.01), (
                customer_id,
                name,
            )
    totals = {name: sum(m[name] for m in expected.values()) for name in CUSTOMER_360_MEASURES}
    assert all(totals[name] > 0 for name in CUSTOMER_360_MEASURES), totals


def test_two_overlapping_runs_take_turns_on_the_warehouse(built_warehouse, tmp_path):
    """Two runs from the CLI against one instance (deploy/dagster.yaml's pools), the second launched while
    the first holds the warehouse pool's slot: both succeed, their dbt steps one after the other, and
    neither meets the DuckDB lock.

    The second run starts once the first has claimed the slot: two claims within the same few
    milliseconds can both succeed on Dagster's SQLite storage (`_claim_concurrency_slot` selects a free
    slot and updates it in two statements, and SQLite ignores FOR UPDATE SKIP LOCKED). Then dbt's
    lock wait is what keeps them apart (test_dbt_waits_for_another_process_holding_the_warehouse)."""
    _, storage, _ = built_warehouse
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.local_temp(str(home)):
        pass  # create the instance's storage once: two processes creating it at once would race
    # The runs are child processes: the data folder reaches them as the platform's configuration.
    env = {**os.environ, "DAGSTER_HOME": str(home), "UNIFIED_ASSETS_DATA_DIR": str(storage.root)}
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "unified_assets.definitions",
        "--select",
        "key:staging/stg_support__tickets",  # one model keeps the test short; any would queue
    ]
    # Output goes to files: a run blocked on a full pipe while holding the pool slot would stall both.
    logs = [tmp_path / f"run{n}.log" for n in range(2)]
    with ExitStack() as stack:
        runs = []
        for log in logs:
            if runs:
                _wait_until_the_warehouse_slot_is_claimed(home, runs[0])
            runs.append(
                subprocess.Popen(
                    command,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=stack.enter_context(log.open("w")),
                    stderr=subprocess.STDOUT,
                )
            )
        for run in runs:
            run.wait(timeout=300)
    outputs = [log.read_text() for log in logs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert not any("lock" in output.lower() and "conflict" in output.lower() for output in outputs)

    with DagsterInstance.local_temp(str(home)) as instance:  # the instance the two runs used
        records = instance.get_run_records()
        assert len(records) == 2 and all(r.dagster_run.is_success for r in records)
        spans = sorted(
            _step_span(instance, record.dagster_run.run_id, "dbt_models") for record in records
        )
    (_, first_end), (second_start, _) = spans
    assert second_start >= first_end, f"dbt steps overlapped: {spans}"


def _wait_until_the_warehouse_slot_is_claimed(home: Path, run: subprocess.Popen) -> None:
    with DagsterInstance.local_temp(str(home)) as instance:
        deadline = time.monotonic() + 120
        while not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots:
            assert run.poll() is None, "the first run ended before it claimed the warehouse slot"
            assert time.monotonic() < deadline, "the first run never claimed the warehouse slot"
            time.sleep(0.05)


def _step_span(instance, run_id: str, step_key: str) -> tuple[float, float]:
    events = [e for e in instance.all_logs(run_id) if e.step_key == step_key and e.is_dagster_event]
    start = next(e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_START")
    end = next(e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS")
    return start, end


STAGING = (
    "stg_accounting__invoices",
    "stg_accounting__invoice_lines",
    "stg_purchasing__purchase_orders",
    "stg_purchasing__purchase_order_lines",
    "stg_support__tickets",
)


def staging_fingerprints(storage) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent hash of every row, per staging model."""
    return {
        model: query(storage, f"select count(*), sum(hash(t)::hugeint) from staging.{model} as t")[
            0
        ]
        for model in STAGING
    }


def test_an_incremental_build_equals_a_full_refresh(own_copy, demo_config):
    """Five days later, with an old day re-extracted too (its versions are superseded), an incremental
    build of staging reads only the changed records and gives exactly the tables a full refresh (the
    `full_refresh` run config in Dagster) gives."""
    _, storage = own_copy
    later = World(demo_config, clock=SimClock.frozen(FROZEN_AT + timedelta(days=5)))
    with serving(later) as server:
        for first, last in (("2026-03-01", "2026-03-01"), ("2026-03-14", "2026-03-20")):
            landed = materialize(
                raw_assets,
                resources=source_resources(server, storage),
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            )
            assert landed.success
    before = staging_fingerprints(storage)

    # Without the lookback: everything in this test was extracted within the last minutes.
    incremental = dbt_by_hand(storage, ["build", "--select", "staging"], staging_lookback_hours=0)
    assert incremental.is_successful()
    after_incremental = staging_fingerprints(storage)
    inserted = {  # what each model's incremental select returned (its watermark is a literal in it)
        r["unique_id"].rsplit(".", 1)[-1]: query(
            storage, f"select count(*) from ({r['compiled_code']})"
        )[0][0]
        for r in incremental.get_artifact("run_results.json")["results"]
        if r["unique_id"].startswith("model.")
    }

    refresh = dbt_by_hand(storage, ["build", "--select", "staging", "--full-refresh"])
    assert refresh.is_successful()
    assert staging_fingerprints(storage) == after_incremental
    assert after_incremental != before, "the later extraction changed staging"
    for model in STAGING:
        assert 0 < inserted[model] < after_incremental[model][0], (model, inserted[model])


def touch(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))
    return path


def test_the_manifest_is_reparsed_only_when_a_project_file_is_newer(tmp_path):
    """Every step process asks this; dbt's own outputs (one folder per build) must not count, or be walked."""
    now = time.time()
    manifest = touch(tmp_path / "target" / "manifest.json", now - 60)
    touch(tmp_path / "models" / "staging" / "stg_x.sql", now - 120)
    touch(tmp_path / "target" / "dbt_models-abc-123" / "run_results.json", now)
    touch(tmp_path / "logs" / "dbt.log", now)
    assert not manifest_is_stale(tmp_path, manifest)

    touch(tmp_path / "models" / "staging" / "stg_x.sql", now)
    assert manifest_is_stale(tmp_path, manifest)


def test_old_build_folders_are_pruned_and_the_newest_or_recent_ones_kept(tmp_path):
    now = time.time()
    manifest = touch(tmp_path / "manifest.json", now - 10 * 86400)
    builds = [tmp_path / f"dbt_models-{n:02d}" for n in range(25)]  # newest first
    for age_days, folder in enumerate(builds, start=1):
        touch(folder / "run_results.json", now - age_days * 86400)
        os.utime(folder, (now - age_days * 86400,) * 2)

    # Nothing younger than the minimum age goes, however many there are: a build may be writing it.
    assert prune_build_targets(tmp_path, keep=20, min_age_s=30 * 86400) == []
    removed = prune_build_targets(tmp_path, keep=20, min_age_s=3600)

    assert sorted(removed) == builds[20:]
    assert sorted(path for path in tmp_path.iterdir() if path.is_dir()) == builds[:20]
    assert manifest.exists()
