"""The raw assets, materialized in-process against the simulator on an ephemeral loopback port."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from saas_simulator.credentials import SimCredentials
from saas_simulator.faults import FaultPlan, FaultSpec
from unified_assets import settings
from unified_assets.defs.ingestion.assets import (
    RAW_RETRY_POLICY,
    RAW_SOURCES,
    build_raw_asset,
    raw_assets,
)
from unified_assets.defs.ingestion.checks import raw_extract_checks
from unified_assets.lake import Lake
from unified_assets_tests.support.resources import (
    SHORT_READ_TIMEOUT,
    source_resources,
    with_fields,
)
from unified_assets_tests.support.services import cluster_storage
from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving
from unified_assets_tests.support.truth import TABLE_SYSTEM, landed_versions, true_versions

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 4)
RANGE_TAGS = {
    "dagster/asset_partition_range_start": str(FIRST),
    "dagster/asset_partition_range_end": str(LAST),
}


def error_chain(failure_event) -> str:
    """The failure as the UI shows it: the error and every error it was caused by."""
    messages, error = [], failure_event.event_specific_data.error
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def materialize_range(server, storage, instance=None, assets=raw_assets, **resource_overrides):
    return materialize(
        assets,
        resources=source_resources(server, storage, **resource_overrides),
        tags=RANGE_TAGS,
        instance=instance,
        raise_on_error=False,
    )


def lake_rows_digest(data_dir, table: str, day: date) -> str:
    path = Lake(data_dir / "lake").partition_file(table, day)
    rows = duckdb.sql(
        f"select * exclude (_extracted_at) from read_parquet('{path}') order by id, updated_at"
    ).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_a_range_of_partitions_lands_exactly_the_ground_truth(demo_config, data_dir, storage):
    world = frozen_world(demo_config)
    instance = DagsterInstance.ephemeral()
    with serving(world) as server:
        result = materialize_range(server, storage, instance)
    assert result.success

    for table in TABLE_SYSTEM:
        expected = true_versions(world, table, FIRST, LAST, FROZEN_AT)
        assert expected, f"the simulated window should hold {table}"
        assert landed_versions(data_dir / "lake", table, FIRST, LAST) == expected, table

    events = result.get_asset_materialization_events()
    assert {event.partition for event in events} == {"2026-03-02", "2026-03-03", "2026-03-04"}
    for event in events:
        metadata = event.materialization.metadata
        table = event.asset_key.path[-1]
        path = Lake(data_dir / "lake").partition_file(table, date.fromisoformat(event.partition))
        file_rows = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
        assert metadata["dagster/row_count"].value == file_rows
        newest = event.partition == "2026-03-04"
        assert ("dagster/column_schema" in metadata) == newest, "the schema rides on the newest day"
        day = date.fromisoformat(event.partition)
        assert metadata["window"].value == (
            f"[{day}T00:00:00Z, {day + timedelta(days=1)}T00:00:00Z)"
        ), "each day's materialization describes that day, not the run"
        assert metadata["records_received"].value >= file_rows  # duplicate versions are dropped

    totals = instance.get_run_by_id(result.run_id).tags
    for table in TABLE_SYSTEM:
        assert (
            totals[f"unified_assets/{table}.window"]
            == "[2026-03-02T00:00:00Z, 2026-03-05T00:00:00Z)"
        )
        assert int(totals[f"unified_assets/{table}.pages"]) >= 1
        assert int(totals[f"unified_assets/{table}.rows_landed"]) == sum(
            e.materialization.metadata["dagster/row_count"].value
            for e in events
            if e.asset_key.path[-1] == table
        )


def test_the_cluster_profile_lands_the_ground_truth_in_the_bucket_and_checks_it_there(
    demo_config, tmp_path, postgres_database, s3_server
):
    """Same extraction, same partitions, in the bucket: nothing lands in the local folder, which is only
    scratch space, and the extract checks (the blocking PII check among them) read the bucket."""
    storage = cluster_storage(tmp_path / "scratch", postgres_database, s3_server)
    world = frozen_world(demo_config)
    with serving(world) as server:
        result = materialize_range(server, storage, assets=[*raw_assets, *raw_extract_checks])
    assert result.success
    lake = storage.lake()
    assert lake.url.startswith("s3://")
    for table in TABLE_SYSTEM:
        assert landed_versions(lake, table, FIRST, LAST) == true_versions(
            world, table, FIRST, LAST, FROZEN_AT
        ), table
        assert len(lake.partition_files(table)) == 3
    assert not (tmp_path / "scratch" / "lake").exists()
    evaluations = result.get_asset_check_evaluations()
    assert "no_pii_in_landed_text" in {evaluation.check_name for evaluation in evaluations}
    assert all(evaluation.passed for evaluation in evaluations), [
        (e.check_name, e.metadata) for e in evaluations if not e.passed
    ]


def test_ticket_pii_is_redacted_in_every_landed_column(demo_config, data_dir, storage):
    world = frozen_world(demo_config)
    with serving(world) as server:
        result = materialize_range(server, storage)
    assert result.success
    glob = Lake(data_dir / "lake").table_glob("support_tickets")
    landed = duckdb.sql(f"select id, subject, description, _raw from read_parquet('{glob}')")
    rows = landed.fetchall()
    assert rows
    planted = 0
    for ticket_id, subject, description, raw in rows:
        for _kind, value in world.ticket_pii(ticket_id):
            planted += 1
            assert value not in (subject or "") + (description or "") + raw, (ticket_id, value)
    assert planted > 0, "the window should contain tickets with PII to redact"
    tickets = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "support_tickets"
    ]
    by_day = [event.materialization.metadata["pii_redacted"].value for event in tickets]
    assert all(set(redacted) == {"email", "phone", "card", "iban"} for redacted in by_day)
    assert sum(sum(redacted.values()) for redacted in by_day) > 0


def test_rerunning_a_partition_gives_identical_rows(demo_config, data_dir, storage):
    world = frozen_world(demo_config)
    with serving(world) as server:
        assert materialize_range(server, storage).success
        before = {t: lake_rows_digest(data_dir, t, LAST) for t in TABLE_SYSTEM}
        assert materialize_range(server, storage).success
    assert {t: lake_rows_digest(data_dir, t, LAST) for t in TABLE_SYSTEM} == before


@pytest.mark.parametrize(
    "plan",
    [
        "server_error=0.25,connection_reset=0.1,html_error_page=0.1",
        "rate_limit=0.2,rate_limit_no_retry_after=0.1,truncated_json=0.1,malformed_json=0.1",
        "duplicate_records=0.4,read_timeout=0.1,expired_token@accounting=0.3",
    ],
)
def test_injected_api_faults_lose_nothing(demo_config, data_dir, plan, storage):
    world = frozen_world(demo_config)
    with serving(world, faults=FaultPlan.parse(plan, seed=11)) as server:
        result = materialize_range(server, storage, page_size=10, **SHORT_READ_TIMEOUT)
        injected = sum(sum(s["faults"].values()) for s in server.stats.values())
    assert result.success
    assert injected > 0, "the plan should have injected faults"
    for table in TABLE_SYSTEM:
        expected = true_versions(world, table, FIRST, LAST, FROZEN_AT)
        assert landed_versions(data_dir / "lake", table, FIRST, LAST) == expected, table


def test_the_raw_assets_retry_a_failed_extraction(demo_config):
    assert all(a.op.retry_policy == RAW_RETRY_POLICY for a in raw_assets)


def test_a_source_that_keeps_failing_fails_its_asset_with_a_clear_error(
    demo_config, data_dir, storage
):
    """Dagster's own retry policy is left out here: its delays are minutes long by design."""
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("server_error", probability=1.0, systems=("purchasing",)),))
    without_dagster_retries = [build_raw_asset(s, retry_policy=None) for s in RAW_SOURCES]
    with serving(world, faults=plan) as server:
        result = materialize_range(server, storage, assets=without_dagster_retries, max_retries=2)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["raw__purchase_orders"]
    message = error_chain(failures[0])
    assert "purchasing (Coupa): HTTP 50" in message
    assert "/coupa/api/purchase_orders, offset 0" in message
    lake = Lake(data_dir / "lake")
    assert not lake.exists(lake.partition_file("purchase_orders", FIRST))
    assert lake.exists(lake.partition_file("invoices", FIRST))


def test_hostile_answers_fail_the_extract_clearly_leave_landed_days_whole_and_a_rerun_converges(
    demo_config, data_dir, storage
):
    """A record whose id is not an id, a 50 MB page and a redirect to another host, each on the third
    request of a range already landed: the asset fails naming the fault, every landed day is exactly as
    before, and a clean re-run lands the same rows again."""
    world = frozen_world(demo_config)
    purchase_orders = [build_raw_asset(s, retry_policy=None) for s in RAW_SOURCES]
    purchase_orders = [a for a in purchase_orders if a.key == AssetKey(["raw", "purchase_orders"])]
    days = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]

    def landed() -> dict[date, str]:
        return {day: lake_rows_digest(data_dir, "purchase_orders", day) for day in days}

    with serving(world) as server:
        assert materialize_range(server, storage, assets=purchase_orders, page_size=10).success
    golden = landed()
    said = {
        "record_id_not_an_id": "record 1 of the page has id='A-",
        "oversized_page": "the response is 50.0 MB, over the 32 MB a response may be",
        "redirect_elsewhere": "HTTP 302 redirect to http://elsewhere.invalid/",
    }
    for kind, message in said.items():
        plan = FaultPlan((FaultSpec(kind, systems=("purchasing",), at_requests=(3,)),))
        with serving(world, faults=plan, rate_limits={"purchasing": None}) as server:
            result = materialize_range(server, storage, assets=purchase_orders, page_size=10)
        assert not result.success, kind
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert message in error_chain(failure), error_chain(failure)
        assert "/coupa/api/purchase_orders, offset " in error_chain(failure)
        assert landed() == golden, f"{kind} changed a landed day"
    with serving(world) as server:
        assert materialize_range(server, storage, assets=purchase_orders, page_size=10).success
    assert landed() == golden


def test_rejected_credentials_say_so_without_the_secret(demo_config, data_dir, storage):
    world = frozen_world(demo_config)
    canary = "canary-token-8d1e"
    with serving(world) as server:
        resources = source_resources(server, storage)
        resources["support_api"] = with_fields(resources["support_api"], api_token=canary)
        result = materialize(
            [a for a in raw_assets if a.key == AssetKey(["raw", "support_tickets"])],
            resources=resources,
            partition_key=str(FIRST),
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = error_chain(failure)
    assert "credentials rejected for support (Zendesk)" in message
    for event in result.all_events:
        assert canary not in str(event), event.event_type_value


def test_a_bad_base_url_fails_before_any_request(demo_config, data_dir, storage):
    world = frozen_world(demo_config)
    with serving(world) as server:
        resources = source_resources(server, storage)
        resources["accounting_api"] = with_fields(
            resources["accounting_api"], base_url="ftp//quickbooks"
        )
        result = materialize(
            [a for a in raw_assets if a.key == AssetKey(["raw", "invoices"])],
            resources=resources,
            partition_key=str(FIRST),
            raise_on_error=False,
        )
        requests = server.stats["accounting"]["requests"]
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "UNIFIED_ASSETS_ACCOUNTING_BASE_URL is not an http(s) URL" in (error_chain(failure))
    assert requests == 0


def test_a_partition_before_the_history_is_refused_before_any_request(
    demo_config, data_dir, storage
):
    world = frozen_world(demo_config)
    before = (settings.DEFAULT_HISTORY_START - timedelta(days=1)).isoformat()
    with serving(world) as server:
        with pytest.raises(Exception, match=before):
            materialize(
                raw_assets, resources=source_resources(server, storage), partition_key=before
            )
        assert all(stats["requests"] == 0 for stats in server.stats.values())


def test_no_credential_appears_in_events_run_config_or_the_lake(demo_config, data_dir, storage):
    canaries = SimCredentials.generate(seed=2026)
    world = frozen_world(demo_config)
    instance = DagsterInstance.ephemeral()
    plan = FaultPlan.parse("expired_token@accounting=at:2,server_error=0.2", seed=5)
    with serving(world, faults=plan, credentials=canaries) as server:
        result = materialize_range(server, storage, instance, credentials=canaries, page_size=20)
        refreshes = server.stats["accounting"]["token_refreshes"]
    assert result.success
    assert refreshes >= 2, "the token refresh path should have run"
    secrets = canaries.secret_values()
    stored = [repr(entry) for entry in instance.all_logs(result.run_id)]
    stored.append(repr(instance.get_run_by_id(result.run_id)))
    stored += [
        path.read_bytes().decode("latin-1") for path in data_dir.rglob("*") if path.is_file()
    ]
    for secret in secrets:
        assert not any(secret in text for text in stored), "a credential leaked"
