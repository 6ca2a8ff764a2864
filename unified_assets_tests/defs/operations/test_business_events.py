"""Business events end to end on the simulator: a P1 ticket enriched within one sensor tick of its webhook,
the export as the safety net, and a month's close starting its consolidation.

The simulated vendors send their signed webhooks to a real receiver on a loopback port, which stores them
in the inbox the sensors read; runs are materialized in-process against a warehouse built once for the
module from two months of extracted history.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    SensorResult,
    build_sensor_context,
    materialize,
)

from saas_simulator.clock import SimClock
from saas_simulator.credentials import SimCredentials
from saas_simulator.webhooks import WebhookEmitter, urgent_ticket_events
from saas_simulator.world import World
from unified_assets import settings
from unified_assets.defs.operations.assets import (
    MARTS,
    enriched_p1_tickets,
    enriched_ticket_location,
    month_end_close,
    month_end_location,
    p1_ticket_partitions,
)
from unified_assets.defs.operations.sensors import (
    build_books_closed_sensor,
    build_p1_tickets_sensor,
    months_closed_between,
)
from unified_assets.lib.storage import PlatformStorage
from unified_assets.sources.changes import SETTLE
from unified_assets.webhooks.receiver import WebhookReceiver
from unified_assets.webhooks.signatures import XeroVerifier, ZendeskVerifier
from unified_assets_tests.support.resources import source_resources, with_fields
from unified_assets_tests.support.services import cluster_storage
from unified_assets_tests.support.simulators import serving
from unified_assets_tests.support.warehouse import build_warehouse, copy_of_warehouse

AS_OF = datetime(2026, 7, 27, 6, 0, tzinfo=UTC)
DEMO = SimCredentials.demo()


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory, demo_config):
    """June and July landed and built once for the module; each test gets its own copy."""
    world = World(demo_config, clock=SimClock.frozen(AS_OF))
    storage = PlatformStorage(data_dir=str(tmp_path_factory.mktemp("events") / "data"))
    return build_warehouse(storage, world, "2026-06-01", "2026-07-26")


@pytest.fixture
def storage(built_warehouse, tmp_path) -> PlatformStorage:
    return copy_of_warehouse(built_warehouse, tmp_path)


@pytest.fixture
def world(demo_config):
    return World(demo_config, clock=SimClock.frozen(AS_OF))


@pytest.fixture
def server(world):
    with serving(world) as running:
        yield running


@pytest.fixture
def receiver(storage):
    verifiers = [
        ZendeskVerifier(DEMO.zendesk_webhook_secret),
        XeroVerifier(DEMO.accounting_webhook_key),
    ]
    with WebhookReceiver(storage.inbox(), verifiers) as running:
        yield running


@pytest.fixture
def emitter(world, receiver):
    subscriptions = {
        source: f"{receiver.url}/webhooks/{source}" for source in ("support", "accounting")
    }
    return WebhookEmitter(world, subscriptions, DEMO)


def built_instance() -> DagsterInstance:
    """An instance that knows the marts were built (the module's warehouse was, in another instance)."""
    instance = DagsterInstance.ephemeral()
    for key in MARTS:
        instance.report_runless_asset_event(AssetMaterialization(key))
    return instance


def tick(sensor, instance, resources, cursor=None) -> SensorResult:
    # The source resources hold the storage resource: nested resources are opened, so the context is
    # entered.
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


def apply(result: SensorResult, instance: DagsterInstance) -> None:
    """What the daemon does with a result before launching its runs: add the requested partitions."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def next_p1(world: World, after: datetime) -> tuple[int, datetime]:
    events = urgent_ticket_events(
        world, after.timestamp(), (after + timedelta(days=14)).timestamp()
    )
    assert events, "the demo world has a P1 ticket every few days"
    first = events[0]
    return int(first["detail"]["id"]), datetime.fromisoformat(first["time"].replace("Z", "+00:00"))


def read_parquet(path) -> pd.DataFrame:
    return duckdb.sql(f"select * from read_parquet('{path}')").df()


def customer_360(storage: PlatformStorage, customer_id) -> dict:
    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        frame = con.execute(
            "select * from marts.customer_360 where customer_id = ?", [customer_id]
        ).df()
    return frame.iloc[0].to_dict()


def test_a_p1_webhook_is_enriched_in_the_next_tick_with_the_customers_open_orders_and_debts(
    storage, world, server, emitter
):
    ticket_id, became_urgent = next_p1(world, AS_OF)
    resources = source_resources(server, storage)
    sensor = build_p1_tickets_sensor(now=world.now)
    instance = built_instance()

    # Watching since just before the ticket: the export has not shown it yet (it settles for SETTLE).
    world.clock.set(became_urgent + timedelta(seconds=5))
    watching = json.dumps({"feed": (became_urgent - timedelta(seconds=1)).isoformat()})
    assert emitter.deliver(
        (became_urgent - timedelta(seconds=1)).timestamp(), world.clock.timestamp()
    )

    result = tick(sensor, instance, resources, cursor=watching)
    assert [r.run_key for r in result.run_requests] == [f"p1:{ticket_id}"]
    assert result.run_requests[0].tags["unified_assets/business_event"] == "P1 ticket via webhook"
    assert result.run_requests[0].tags["dagster/max_retries"] == "2", "seen once, so retried"
    apply(result, instance)

    run = materialize(
        [enriched_p1_tickets],
        partition_key=str(ticket_id),
        instance=instance,
        resources={"storage": storage, "support_api": resources["support_api"]},
    )
    assert run.success
    row = read_parquet(enriched_ticket_location(storage, ticket_id)).iloc[0]
    assert row["ticket_id"] == ticket_id and row["priority"] == "urgent"
    assert row["customer_id"] is not None, "the ticket's organization resolves to a customer"
    account = customer_360(storage, row["customer_id"])
    assert row["customer_name"] == account["customer_name"]
    assert row["open_purchase_order_count"] == account["open_purchase_order_count"]
    assert row["past_due_invoice_count"] == account["past_due_invoice_count"]
    assert row["past_due_balance_usd"] == pytest.approx(
        account["past_due_balance"] or 0.0, abs=0.01
    )
    assert len(row["open_purchase_order_numbers"]) == row["open_purchase_order_count"]

    # Later the export shows the same ticket: it is not enriched twice.
    world.clock.advance(SETTLE + timedelta(minutes=1))
    again = tick(sensor, instance, resources, cursor=result.cursor)
    assert not again.run_requests
    assert "1 already enriched" in again.skip_reason.skip_message
    assert p1_ticket_partitions.get_partition_keys(dynamic_partitions_store=instance) == [
        str(ticket_id)
    ]


def test_in_the_cluster_profile_the_receiver_and_the_sensor_meet_in_the_bucket(
    tmp_path, world, server, postgres_database, s3_server
):
    """The receiver and the daemon on two hosts that share no folder, only the bucket."""
    bucket_url = f"s3://{s3_server.create_bucket()}/unified_assets"
    hosts = {
        name: cluster_storage(tmp_path / name, postgres_database, s3_server, bucket_url=bucket_url)
        for name in ("receiver", "daemon")
    }
    ticket_id, became_urgent = next_p1(world, AS_OF)
    world.clock.set(became_urgent + timedelta(seconds=5))
    verifiers = [ZendeskVerifier(DEMO.zendesk_webhook_secret)]
    with WebhookReceiver(hosts["receiver"].inbox(), verifiers) as receiver:
        emitter = WebhookEmitter(world, {"support": f"{receiver.url}/webhooks/support"}, DEMO)
        assert emitter.deliver(
            (became_urgent - timedelta(seconds=1)).timestamp(), world.clock.timestamp()
        )

    watching = json.dumps({"feed": (became_urgent - timedelta(seconds=1)).isoformat()})
    sensor = build_p1_tickets_sensor(now=world.now)
    resources = source_resources(server, hosts["daemon"])
    result = tick(sensor, built_instance(), resources, cursor=watching)
    assert [r.run_key for r in result.run_requests] == [f"p1:{ticket_id}"]
    assert result.run_requests[0].tags["unified_assets/business_event"] == "P1 ticket via webhook"
    assert not any((tmp_path / name / "inbox").exists() for name in hosts)


def test_a_p1_whose_webhook_never_came_is_found_in_the_export(storage, world, server):
    ticket_id, became_urgent = next_p1(world, AS_OF)
    resources = source_resources(server, storage)
    sensor = build_p1_tickets_sensor(now=world.now)
    with DagsterInstance.ephemeral() as instance:
        world.clock.set(became_urgent - timedelta(minutes=5))
        waiting = tick(sensor, instance, resources)
        assert (
            "waiting for marts/customer_360, marts/sku_demand_daily"
            in waiting.skip_reason.skip_message
        )
        assert waiting.cursor is None, "nothing was read, so nothing is passed over"
    with built_instance() as instance:
        first = tick(sensor, instance, resources)
        assert str(ticket_id) not in {r.partition_key for r in first.run_requests}
        apply(first, instance)

        world.clock.set(became_urgent + SETTLE + timedelta(seconds=30))
        second = tick(sensor, instance, resources, cursor=first.cursor)
        assert [r.partition_key for r in second.run_requests] == [str(ticket_id)]
        assert (
            second.run_requests[0].tags["unified_assets/business_event"] == "P1 ticket via export"
        )

        down = {
            "storage": storage,
            "support_api": with_fields(resources["support_api"], base_url="http://127.0.0.1:9"),
        }
        world.clock.advance(timedelta(minutes=1))
        broken = tick(sensor, instance, down, cursor=second.cursor)
        assert "the export was not read" in broken.skip_reason.skip_message
        assert json.loads(broken.cursor)["feed"] == json.loads(second.cursor)["feed"]


def test_the_books_closing_starts_the_months_consolidation_once(storage, world, server, emitter):
    resources = {
        "storage": storage,
        "accounting_api": source_resources(server, storage)["accounting_api"],
    }
    sensor = build_books_closed_sensor(now=world.now)
    close = datetime(2026, 8, 3, 23, 0, tzinfo=UTC)  # 16:00 company time on the 3rd
    with DagsterInstance.ephemeral() as instance:
        world.clock.set(close - timedelta(minutes=10))
        baseline = tick(sensor, instance, resources)
        assert "books closed through 2026-06-30" in baseline.skip_reason.skip_message

        world.clock.set(close + timedelta(minutes=1))
        quiet = tick(sensor, instance, resources, cursor=baseline.cursor)
        assert "next look at the preferences" in quiet.skip_reason.skip_message

        assert emitter.deliver((close - timedelta(minutes=10)).timestamp(), world.clock.timestamp())
        heard = tick(sensor, instance, resources, cursor=quiet.cursor)
        assert [r.run_key for r in heard.run_requests] == ["close:2026-07-01"]
        assert heard.run_requests[0].tags["dagster/max_retries"] == "2"
        assert "via webhook" in heard.run_requests[0].tags["unified_assets/business_event"]

        run = materialize(
            [month_end_close],
            partition_key="2026-07-01",
            instance=instance,
            resources={"storage": storage},
        )
        assert run.success
        july = read_parquet(month_end_location(storage, "2026-07-01"))
        assert len(july) > 10 and july["invoiced_amount"].sum() > 0

        world.clock.advance(timedelta(hours=1))
        after = tick(sensor, instance, resources, cursor=heard.cursor)
        assert not after.run_requests
        assert "no new close" in after.skip_reason.skip_message


def test_months_closed_between_counts_whole_months_only():
    from datetime import date

    assert months_closed_between(date(2026, 6, 30), date(2026, 7, 31)) == ["2026-07-01"]
    assert months_closed_between(date(2026, 5, 31), date(2026, 8, 31)) == [
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
    ]
    assert months_closed_between(date(2026, 7, 31), date(2026, 7, 31)) == []


def test_an_unreachable_accounting_system_is_a_skip_that_keeps_the_cursor(storage, world, server):
    resources = {
        "storage": storage,
        "accounting_api": source_resources(server, storage)["accounting_api"],
    }
    sensor = build_books_closed_sensor(now=world.now)
    with DagsterInstance.ephemeral() as instance:
        baseline = tick(sensor, instance, resources)
        down = {
            "storage": storage,
            "accounting_api": with_fields(
                resources["accounting_api"], base_url="http://127.0.0.1:9"
            ),
        }
        world.clock.advance(timedelta(hours=1))
        result = tick(sensor, instance, down, cursor=baseline.cursor)
    assert not result.run_requests
    assert "preferences were not read" in result.skip_reason.skip_message
    assert json.loads(result.cursor)["polled_at"] == json.loads(baseline.cursor)["polled_at"]


def test_a_signed_webhook_of_the_wrong_shape_is_passed_over_and_named(storage, world, server):
    from unified_assets.webhooks.signatures import Delivery

    storage.inbox().put(Delivery("support", "bad-1", b'{"type": "zen:event-type:ticket.created"}'))
    resources = source_resources(server, storage)
    sensor = build_p1_tickets_sensor(now=world.now)
    with built_instance() as instance:
        result = tick(sensor, instance, resources)
    assert not result.run_requests
    assert json.loads(result.cursor)["inbox"] == storage.inbox().items("support")[-1].name


def test_the_local_instance_retries_the_event_runs_that_ask_for_it(tmp_path):
    """The business-event sensors see each event once; deploy/dagster.yaml has the daemon retry their
    failed runs (they carry `dagster/max_retries`) and no other run."""
    shutil.copy(settings.PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 0
