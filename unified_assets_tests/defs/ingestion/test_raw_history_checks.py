"""The checks that compare an extract with its source's history: each passing on a clean day and warning
on a collapse, a spike, a unit change and a renamed field, through real Dagster runs."""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import replace

import pytest
from dagster import (
    AssetCheckKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    materialize,
)

from saas_simulator.anomalies import inject
from saas_simulator.config import WorldConfig
from unified_assets.defs.ingestion.assets import RAW_SOURCES, build_raw_asset
from unified_assets.defs.ingestion.checks import build_extract_checks
from unified_assets.lib.source_apis import AccountingApi
from unified_assets.lib.storage import PlatformStorage
from unified_assets_tests.support.resources import source_resources
from unified_assets_tests.support.simulators import frozen_world, serving

INVOICES = next(source for source in RAW_SOURCES if source.table == "invoices")
HISTORY = {
    "dagster/asset_partition_range_start": "2026-02-01",
    "dagster/asset_partition_range_end": "2026-03-08",
}
NEXT_DAY = "2026-03-09"  # a Monday, after five full weeks of history
INVOICE_CHECKS = build_extract_checks(INVOICES)


def land(instance, storage, config, source=INVOICES, **tags):
    """Materialize raw/invoices (optionally a doctored variant) with its history checks."""
    with serving(frozen_world(config)) as server:
        result = materialize(
            [build_raw_asset(source, retry_policy=None), INVOICE_CHECKS],
            resources=source_resources(server, storage),
            instance=instance,
            tags=tags,
            raise_on_error=False,
        )
    assert result.success
    evaluations = defaultdict(list)
    for evaluation in result.get_asset_check_evaluations():
        evaluations[evaluation.check_name].append(evaluation)
    return evaluations


def only(evaluations):
    [evaluation] = evaluations
    return evaluation


@pytest.fixture(scope="module")
def clean_history(tmp_path_factory, demo_config):
    """Five weeks of invoices landed in one backfill run, in an instance and lake kept on disk."""
    root = tmp_path_factory.mktemp("history")
    storage = PlatformStorage(data_dir=str(root / "data"))
    (root / "dagster").mkdir()
    with DagsterInstance.local_temp(str(root / "dagster")) as instance:
        first = land(instance, storage, demo_config, **HISTORY)
    return root, first


@pytest.fixture
def instance(clean_history, tmp_path, data_dir):
    """A private copy of the clean history, so each test's bad day affects no other test: the instance,
    with the lake in the test's own data folder (the `storage` fixture's)."""
    root, _ = clean_history
    shutil.copytree(root / "data", data_dir)
    shutil.copytree(root / "dagster", tmp_path / "dagster")
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as copied:
        yield copied


def day(partition: str) -> dict[str, str]:
    return {"dagster/partition": partition}


def test_a_first_backfill_passes_every_check(clean_history):
    _, evaluations = clean_history
    assert set(evaluations) == {
        "row_count_in_usual_range",
        "no_numeric_drift",
        "source_schema_unchanged",
        "no_uncastable_values",
        "batch_looks_usual",
    }
    failed = [
        f"{name}: {e.description}"
        for name, each in evaluations.items()
        for e in each
        if not e.passed
    ]
    assert not failed
    # The batch score learns from the landed days before the ones it judges: within a first backfill
    # too, from its fifth week on (28 days to learn from).
    batches = {e.partition: e for e in evaluations["batch_looks_usual"]}
    assert len(batches) == 36
    not_judged = sorted(day for day, e in batches.items() if "Not judged" in e.description)
    assert not_judged == [f"2026-02-{d:02}" for d in range(1, 29)]
    assert "invoices: 0 landed days" in batches["2026-02-01"].description
    assert all("usual batch" in batches[f"2026-03-{d:02}"].description for d in range(1, 9))
    # The volume is judged per day, on each day's partition; against earlier runs only, of which a
    # first backfill has none.
    volume = evaluations["row_count_in_usual_range"]
    assert len(volume) == 36
    assert {e.partition for e in volume} == {f"2026-02-{d:02}" for d in range(1, 29)} | {
        f"2026-03-{d:02}" for d in range(1, 9)
    }
    assert all(e.metadata["status"].value == "no history" for e in volume)
    assert all("no earlier extract" in e.description for e in volume)


def test_a_first_small_extract_does_not_make_optional_fields_new(tmp_path, storage, demo_config):
    """A quiet Sunday landed first (as the new-data sensor does on a first look), then weeks of backfill:
    the fields the Sunday's few invoices happened not to carry are not "new"."""
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        land(instance, storage, demo_config, **day("2026-03-08"))
        evaluations = land(instance, storage, demo_config, **HISTORY)
    schema = only(evaluations["source_schema_unchanged"])
    assert schema.passed, schema.description
    assert schema.metadata["baseline_extracts"].value == 1


def test_a_clean_day_passes_against_its_history(instance, storage, demo_config):
    evaluations = land(instance, storage, demo_config, **day(NEXT_DAY))
    assert {name: only(each).passed for name, each in evaluations.items()} == {
        "row_count_in_usual_range": True,
        "no_numeric_drift": True,
        "source_schema_unchanged": True,
        "no_uncastable_values": True,
        "batch_looks_usual": True,
    }
    batch = only(evaluations["batch_looks_usual"])
    assert batch.partition == NEXT_DAY
    assert batch.metadata["score"].value < batch.metadata["threshold"].value
    volume = only(evaluations["row_count_in_usual_range"])
    assert volume.partition == NEXT_DAY
    assert volume.metadata["status"].value == "usual", volume.description
    assert only(evaluations["source_schema_unchanged"]).metadata["baseline_extracts"].value == 1
    drift = only(evaluations["no_numeric_drift"]).metadata
    assert drift["line_quantity_ks_statistic"].value < 0.15


@pytest.mark.parametrize(("scale", "status"), [(0.1, "collapse"), (6.0, "spike")])
def test_a_collapse_or_spike_in_volume_warns(instance, storage, scale, status):
    """The source suddenly serves a tenth (or six times) of its usual invoices for the day."""
    evaluations = land(instance, storage, WorldConfig.demo(scale=scale), **day(NEXT_DAY))
    volume = only(evaluations["row_count_in_usual_range"])
    assert not volume.passed
    assert volume.severity.value == "WARN"
    assert volume.partition == NEXT_DAY  # the UI shows the day at fault as the failed partition
    assert volume.metadata["status"].value == status and status in volume.description
    batch = only(evaluations["batch_looks_usual"])
    assert batch.partition == NEXT_DAY
    # A world of another size has other customers too: volume is one driver among the top three.
    assert "- volume " in batch.metadata["drivers"].value, batch.description
    # Lost rows are a fault of the batch; more rows than usual are the row count's to report.
    assert batch.passed == (status == "spike"), batch.description


@pytest.mark.parametrize(
    ("kind", "driver"),
    [("amounts_doubled", "price level"), ("field_stuck", "quantity concentration")],
)
def test_a_quiet_failure_in_a_days_values_warns_as_an_unusual_batch(
    instance, storage, demo_config, kind, driver
):
    """The accounting system serves the day's invoices with every amount doubled (a currency switch),
    or with every line's quantity stuck at 1: each invoice well-formed, every count as usual."""

    def altered(record):
        return inject("accounting", kind, [record])[0], {}

    doctored = replace(INVOICES, prepare=altered)
    evaluations = land(instance, storage, demo_config, source=doctored, **day(NEXT_DAY))
    batch = only(evaluations["batch_looks_usual"])
    assert not batch.passed and batch.severity.value == "WARN", batch.description
    assert batch.partition == NEXT_DAY
    assert driver in batch.metadata["drivers"].value.splitlines()[0], batch.description
    assert only(evaluations["row_count_in_usual_range"]).passed, "as many invoices as usual"


def test_quantities_sent_in_another_unit_warn_as_drift(instance, storage, demo_config):
    """The accounting system starts sending quantities in units of 1/100 (and amounts in cents)."""

    def in_hundredths(record):
        lines = [
            {
                **line,
                "Amount": line["Amount"] * 100,
                "SalesItemLineDetail": {
                    **line["SalesItemLineDetail"],
                    "Qty": line["SalesItemLineDetail"]["Qty"] * 100,
                },
            }
            if line.get("DetailType") == "SalesItemLineDetail"
            else line
            for line in record["Line"]
        ]
        return {**record, "Line": lines}, {}

    doctored = replace(INVOICES, prepare=in_hundredths)
    evaluations = land(instance, storage, demo_config, source=doctored, **day(NEXT_DAY))
    drift = only(evaluations["no_numeric_drift"])
    assert not drift.passed
    assert drift.severity.value == "WARN"
    assert "line_quantity: drifted" in drift.description
    assert "line_amount: drifted" in drift.description
    assert only(evaluations["source_schema_unchanged"]).passed, "same fields, only different values"


def test_a_renamed_field_warns_as_a_schema_change(instance, storage, demo_config):
    def renamed_total(record):
        renamed = {
            ("TotalAmount" if name == "TotalAmt" else name): value for name, value in record.items()
        }
        return renamed, {}

    doctored = replace(INVOICES, prepare=renamed_total)
    evaluations = land(instance, storage, demo_config, source=doctored, **day(NEXT_DAY))
    schema = only(evaluations["source_schema_unchanged"])
    assert not schema.passed
    assert schema.severity.value == "WARN"
    assert schema.metadata["new_fields"].value == "TotalAmount"
    assert schema.metadata["missing_fields"].value == "TotalAmt"
    assert "New fields: TotalAmount; Missing fields: TotalAmt" in schema.description


def test_a_materialization_without_a_row_count_is_left_out_of_the_history(
    instance, storage, demo_config
):
    """A partition reported by hand (no row count) neither breaks the check nor counts as zero rows."""
    instance.report_runless_asset_event(AssetMaterialization(INVOICES.key, partition="2026-03-02"))
    evaluations = land(instance, storage, demo_config, **day(NEXT_DAY))
    assert only(evaluations["row_count_in_usual_range"]).passed


def check_alone(instance, storage, check: AssetCheckKey, **tags):
    """The UI's "Execute" on one check: only it runs, against the extracts already in the instance."""
    return materialize(
        [build_raw_asset(INVOICES, retry_policy=None), INVOICE_CHECKS],
        selection=AssetSelection.checks(check),
        instance=instance,
        # The source is required by the asset, not called.
        resources={"storage": storage, "accounting_api": AccountingApi(storage=storage)},
        tags=tags,
    ).get_asset_check_evaluations()


def test_a_check_run_alone_from_the_ui_evaluates_only_that_check(instance, storage):
    """The checks of a source share one step; selecting one runs only it."""
    check = AssetCheckKey(INVOICES.key, "source_schema_unchanged")
    evaluations = check_alone(instance, storage, check)
    assert [(e.asset_key, e.check_name) for e in evaluations] == [(check.asset_key, check.name)]
    assert evaluations[0].passed


def test_the_volume_check_run_alone_judges_the_partitions_asked_for(instance, storage):
    """For one partition, that day; without partitions, every day of the latest extract."""
    check = AssetCheckKey(INVOICES.key, "row_count_in_usual_range")
    [one_day] = check_alone(instance, storage, check, **day("2026-03-02"))
    assert (one_day.check_name, one_day.partition, one_day.passed) == (
        check.name,
        "2026-03-02",
        True,
    )
    every_day = check_alone(instance, storage, check)
    assert len(every_day) == 36 and {e.check_name for e in every_day} == {check.name}
