"""Clock, config, credentials and the plain-text settings users type (CLI flags, environment)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from saas_simulator import (
    FaultPlan,
    FaultSpec,
    RateLimit,
    SimClock,
    SimCredentials,
    WorldConfig,
)
from saas_simulator.ratelimit import parse_rate_limits


def test_frozen_clock_stands_still_until_moved():
    clock = SimClock.parse("frozen:2026-06-01T00:00:00Z")
    assert clock.now() == datetime(2026, 6, 1, tzinfo=UTC)
    time.sleep(0.01)
    assert clock.now() == datetime(2026, 6, 1, tzinfo=UTC)
    clock.advance(timedelta(hours=2))
    assert clock.now() == datetime(2026, 6, 1, 2, tzinfo=UTC)
    clock.set("2026-07-01T00:00:00+02:00")
    assert clock.now() == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert str(clock) == "frozen:2026-06-30T22:00:00Z"


def test_accelerated_clock_is_a_function_of_real_time():
    anchor = datetime.now(UTC) - timedelta(seconds=10)
    clock = SimClock.accelerated(60, anchor)
    expected = anchor + timedelta(seconds=600)
    assert abs((clock.now() - expected).total_seconds()) < 60 * 0.5
    same = SimClock.parse(str(clock))
    assert abs((same.now() - clock.now()).total_seconds()) < 60 * 0.5


def test_real_clock_is_now_and_aware():
    now = SimClock.parse("real").now()
    assert now.tzinfo is not None
    assert abs((now - datetime.now(UTC)).total_seconds()) < 1


@pytest.mark.parametrize(
    "text", ["", "frozen", "frozen:yesterday", "accelerated:60", "accelerated:x@2026-01-01", "fast"]
)
def test_bad_clock_settings_name_the_value(text):
    with pytest.raises(ValueError, match=repr(text).replace("[", r"\[")):
        SimClock.parse(text)


def test_only_a_frozen_clock_can_be_moved():
    with pytest.raises(ValueError, match="frozen"):
        SimClock.real().advance(1)


def test_world_config_presets_and_validation():
    demo = WorldConfig.demo()
    assert 100 <= demo.customer_count <= 150 and 50 <= demo.products <= 80 and demo.suppliers == 10
    assert demo.history_start == date(2026, 1, 1) and demo.seed == 7
    bench = WorldConfig.benchmark(scale=2.0)
    assert bench.rate("direct_invoices_per_day") == 2 * WorldConfig.benchmark().rate(
        "direct_invoices_per_day"
    )
    assert demo.replace(seed=3).seed == 3
    with pytest.raises(ValueError, match="scale"):
        WorldConfig(scale=0)
    with pytest.raises(ValueError, match="customers"):
        WorldConfig(customers=0)


def test_demo_credentials_are_fixed_and_generated_ones_are_seeded():
    assert SimCredentials.demo() == SimCredentials.demo()
    assert SimCredentials.generate(5) == SimCredentials.generate(5)
    assert SimCredentials.generate(5) != SimCredentials.generate(6)
    creds = SimCredentials.generate(1)
    assert all(secret not in repr(creds) for secret in creds.secret_values())
    lines = creds.env_lines(
        {"accounting": "http://a", "purchasing": "http://p", "support": "http://s"}
    )
    names = [line.split("=", 1)[0] for line in lines]
    assert (
        "UNIFIED_ASSETS_ACCOUNTING_REFRESH_TOKEN" in names
        and "UNIFIED_ASSETS_SUPPORT_API_TOKEN" in names
    )
    assert f"UNIFIED_ASSETS_PURCHASING_API_KEY={creds.coupa_api_key}" in lines


def test_fault_plan_parses_the_cli_form():
    plan = FaultPlan.parse(
        "server_error=0.1,rate_limit@support=at:2+5,schema_drift:renamed_field@accounting+purchasing=at:3,"
        "seed=9,timeout=0.5"
    )
    assert plan.seed == 9 and plan.timeout_delay_s == 0.5
    server_error, rate_limit, drift = plan.specs
    assert server_error == FaultSpec("server_error", 0.1)
    assert rate_limit == FaultSpec("rate_limit", systems=("support",), at_requests=(2, 5))
    assert drift.mode == "renamed_field" and drift.systems == ("accounting", "purchasing")
    assert FaultPlan.parse(str(plan), seed=9).specs == plan.specs
    assert not FaultPlan.parse("")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode=0.1", "unknown fault kind"),
        ("server_error=2", "probability"),
        ("server_error", "expected"),
        ("server_error@billing=0.1", "unknown system"),
        ("schema_drift:sideways=0.1", "mode"),
        ("rate_limit:new_field=0.1", "takes no mode"),
        ("server_error=at:0", "start at 1"),
        ("server_error=often", "neither a probability"),
    ],
)
def test_bad_fault_settings_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message) as raised:
        FaultPlan.parse(text)
    assert repr(text) in str(raised.value)


def test_fault_decisions_are_a_function_of_seed_system_and_request_number():
    plan = FaultPlan([FaultSpec("server_error", 0.3)], seed=1)
    first = [plan.decide("accounting", n) is not None for n in range(1, 200)]
    assert first == [plan.decide("accounting", n) is not None for n in range(1, 200)]
    assert 0.2 < sum(first) / len(first) < 0.4
    other_seed = FaultPlan([FaultSpec("server_error", 0.3)], seed=2)
    assert first != [other_seed.decide("accounting", n) is not None for n in range(1, 200)]
    assert first != [plan.decide("support", n) is not None for n in range(1, 200)]


def test_rate_limit_settings():
    assert RateLimit.parse("10/60") == RateLimit(10, 60.0)
    limits = parse_rate_limits("support=600/60,accounting=off")
    assert limits == {"support": RateLimit(600, 60.0, retry_after=True), "accounting": None}
    with pytest.raises(ValueError, match="10 per minute"):
        RateLimit.parse("10 per minute")
