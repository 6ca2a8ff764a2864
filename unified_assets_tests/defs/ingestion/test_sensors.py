"""The event-driven sensors, evaluated as the daemon does (`build_sensor_context`) against the simulator.

The simulator's clock is frozen and moved by hand, and each sensor is built with that clock, so what a tick
asks for can be compared with the simulator's ground truth for the same window.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from saas_simulator.clock import SimClock
from saas_simulator.world import World
from unified_assets.defs.ingestion.sensors import FIRST_LOOK, build_new_data_sensor
from unified_assets.lib.source_apis import SourceApi
from unified_assets.sources.changes import SETTLE
from unified_assets_tests.support.resources import source_resources, with_fields
from unified_assets_tests.support.simulators import serving
from unified_assets_tests.support.truth import TABLE_SYSTEM

TUESDAY_MORNING = datetime(2026, 3, 17, 17, 0, tzinfo=UTC)  # 10:00 in the company's zone


@pytest.fixture
def world(demo_config):
    return World(demo_config, clock=SimClock.frozen(TUESDAY_MORNING))


@pytest.fixture
def resources(world, storage):
    with serving(world) as server:
        yield source_resources(server, storage)


def tick(sensor, resources, cursor=None) -> SensorResult:
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context,
    ):
        return sensor(context)


def changed_days(world: World, table: str, start: datetime, end: datetime) -> set[str]:
    truth = world.ground_truth(
        TABLE_SYSTEM[table], as_of=world.now(), updated_from=start, updated_to=end
    )
    return {str(moment.date()) for moment in truth["updated_at"]}


def requested_days(request) -> set[str]:
    if request.partition_key:
        return {request.partition_key}
    first = date.fromisoformat(request.tags["dagster/asset_partition_range_start"])
    last = date.fromisoformat(request.tags["dagster/asset_partition_range_end"])
    return {str(first + timedelta(days=n)) for n in range((last - first).days + 1)}


def requested(result: SensorResult) -> dict[str, set[str]]:
    """Per raw table, the days the tick asked to extract."""
    found: dict[str, set[str]] = {}
    for request in result.run_requests or []:
        for key in request.asset_selection:
            days = found.setdefault(key.path[-1], set())
            assert not days & requested_days(request), "a day is asked for once per tick"
            days |= requested_days(request)
    return found


def test_the_first_tick_extracts_the_days_changed_in_the_last_day_and_moves_every_cursor(
    world, resources
):
    sensor = build_new_data_sensor(now=world.now)
    result = tick(sensor, resources)

    until = TUESDAY_MORNING - SETTLE
    expected = {
        table: changed_days(world, table, until - FIRST_LOOK, until) for table in TABLE_SYSTEM
    }
    assert all(days == {"2026-03-16", "2026-03-17"} for days in expected.values())
    assert requested(result) == expected
    assert json.loads(result.cursor) == {table: until.isoformat() for table in TABLE_SYSTEM}
    [request] = result.run_requests  # every source changed on both days: one run for all of it
    assert request.run_key == (
        "invoices+purchase_orders+support_tickets:2026-03-16..2026-03-17:2026-03-17T16:58:00Z"
    )
    assert request.tags["unified_assets/trigger"] == "new data"


def test_a_window_across_midnight_asks_for_both_days_and_only_days_that_changed(world, resources):
    sensor = build_new_data_sensor(now=world.now)
    first = tick(sensor, resources)
    world.clock.advance(timedelta(days=1))
    second = tick(sensor, resources, cursor=first.cursor)

    start, end = TUESDAY_MORNING - SETTLE, world.now() - SETTLE
    expected = {table: changed_days(world, table, start, end) for table in TABLE_SYSTEM}
    assert expected["invoices"] == {"2026-03-17", "2026-03-18"}
    assert requested(second) == {table: days for table, days in expected.items() if days}
    keys = {request.run_key for request in second.run_requests}
    assert not keys & {request.run_key for request in first.run_requests}


def test_a_tick_repeated_from_the_same_cursor_asks_for_the_same_runs_by_run_key(world, resources):
    """The daemon launches one run per run key: a tick evaluated twice (say after a crash before its
    cursor was saved) must produce the same keys, so nothing is extracted twice."""
    sensor = build_new_data_sensor(now=world.now)
    first = tick(sensor, resources)
    world.clock.advance(timedelta(minutes=45))
    again = [tick(sensor, resources, cursor=first.cursor) for _ in range(2)]
    assert again[0].run_requests, "45 minutes of a weekday morning change something"
    assert [r.run_key for r in again[0].run_requests] == [r.run_key for r in again[1].run_requests]
    assert again[0].cursor == again[1].cursor


def test_nothing_new_is_a_skip_that_says_what_was_asked(world, resources):
    sensor = build_new_data_sensor(now=world.now)
    first = tick(sensor, resources)
    second = tick(sensor, resources, cursor=first.cursor)  # the clock stood still
    assert not second.run_requests
    assert "no change" in second.skip_reason.skip_message
    assert second.cursor == first.cursor

    world.clock.set(datetime(2026, 3, 22, 3, 0, tzinfo=UTC))  # a Sunday night: the world sleeps
    quiet = build_new_data_sensor(now=world.now)
    start = world.now() - timedelta(minutes=5)
    cursor = json.dumps({table: start.isoformat() for table in TABLE_SYSTEM})
    result = tick(quiet, resources, cursor=cursor)
    assert all(not changed_days(world, t, start, world.now() - SETTLE) for t in TABLE_SYSTEM)
    assert not result.run_requests
    for table in TABLE_SYSTEM:
        assert table in result.skip_reason.skip_message


def test_an_unreachable_system_keeps_its_cursor_and_gets_no_run_while_the_others_go_on(
    world, resources
):
    sensor = build_new_data_sensor(now=world.now)
    first = tick(sensor, resources)
    world.clock.advance(timedelta(hours=2))
    broken = {
        **resources,
        "support_api": with_fields(resources["support_api"], base_url="http://127.0.0.1:9"),
    }
    result = tick(sensor, broken, cursor=first.cursor)

    assert set(requested(result)) == {"invoices", "purchase_orders"}
    cursor = json.loads(result.cursor)
    assert cursor["support_tickets"] == json.loads(first.cursor)["support_tickets"]
    assert cursor["invoices"] == (world.now() - SETTLE).isoformat()

    recovered = tick(sensor, resources, cursor=result.cursor)
    assert requested(recovered).get("support_tickets") == {"2026-03-17"}


def test_an_unreachable_system_alone_is_a_skip_naming_it(world, resources):
    sensor = build_new_data_sensor(now=world.now)
    down = {
        key: with_fields(api, base_url="http://127.0.0.1:9", connect_timeout_s=0.5)
        if isinstance(api, SourceApi)
        else api
        for key, api in resources.items()
    }
    result = tick(sensor, down)
    assert not result.run_requests
    message = result.skip_reason.skip_message
    assert "not reachable" in message
    for table in TABLE_SYSTEM:
        assert table in message
    assert json.loads(result.cursor) == {}


def test_an_unreadable_cursor_is_reported_and_replaced(world, resources):
    sensor = build_new_data_sensor(now=world.now)
    result = tick(sensor, resources, cursor="not json")
    assert requested(result)
    assert set(json.loads(result.cursor)) == set(TABLE_SYSTEM)


def test_the_sensor_never_looks_before_the_first_day_of_history(world, resources, monkeypatch):
    monkeypatch.setenv("UNIFIED_ASSETS_HISTORY_START", "2026-03-17")
    sensor = build_new_data_sensor(now=world.now)
    old = json.dumps({t: "2026-03-10T00:00:00+00:00" for t in TABLE_SYSTEM})
    result = tick(sensor, resources, cursor=old)
    assert all(day == {"2026-03-17"} for day in requested(result).values())
    assert date(2026, 3, 17) == TUESDAY_MORNING.date()


def test_sources_share_a_run_only_when_they_changed_on_the_same_days():
    from unified_assets.defs.ingestion.assets import RAW_SOURCES
    from unified_assets.defs.ingestion.sensors import run_requests

    invoices, orders, tickets = RAW_SOURCES
    d1, d2, d3 = date(2026, 3, 15), date(2026, 3, 16), date(2026, 3, 17)
    changed = {invoices: (d1, d2), orders: (d1, d2), tickets: (d1, d3)}
    requests = run_requests(changed, dict.fromkeys(changed, TUESDAY_MORNING))
    asked = {
        (tuple(k.path[-1] for k in r.asset_selection), tuple(sorted(requested_days(r))))
        for r in requests
    }
    assert asked == {
        (("invoices", "purchase_orders"), ("2026-03-15", "2026-03-16")),
        (("support_tickets",), ("2026-03-15",)),
        (("support_tickets",), ("2026-03-17",)),
    }
    assert len({r.run_key for r in requests}) == 3
