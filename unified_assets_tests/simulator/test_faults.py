"""Rate limits and faults: each observable, reproducible by seed, and survivable by retrying."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pandas as pd
import pytest
import requests

from saas_simulator import (
    FaultPlan,
    FaultSpec,
    RateLimit,
    SimClock,
    SimulatorServer,
    World,
    WorldConfig,
)
from unified_assets_tests.support.simulator_requests import (
    RetryingClient,
    coupa_get,
    coupa_window,
    qbo_query,
    qbo_token,
    qbo_window,
    zendesk_export,
)
from unified_assets_tests.support.simulators import NO_RATE_LIMITS, SIMULATOR_FROZEN_AT

WEEK = (datetime(2026, 4, 6, tzinfo=UTC), datetime(2026, 4, 13, tzinfo=UTC))
PAGE = f"select * from Invoice where {qbo_window(*WEEK)} ORDERBY Metadata.LastUpdatedTime"


def serve(world: World, *specs: FaultSpec, **options) -> SimulatorServer:
    limits = options.pop("rate_limits", NO_RATE_LIMITS)
    return SimulatorServer(world, faults=FaultPlan(specs, **options), rate_limits=limits)


def page(
    server: SimulatorServer, token: str, position: int, size: int = 100, timeout: float = 5
) -> requests.Response:
    return qbo_query(
        server, token, f"{PAGE} STARTPOSITION {position} MAXRESULTS {size}", timeout=timeout
    )


# -------------------------------------------------------------------------------------- rate limits


def test_each_system_enforces_its_rate_limit(world):
    limits = {
        "accounting": RateLimit(2, 60),
        "purchasing": RateLimit(2, 60, retry_after=True),
        "support": RateLimit(2, 60, retry_after=True),
    }
    with SimulatorServer(world, rate_limits=limits) as server:
        token = qbo_token(server)
        accounting = [page(server, token, 1) for _ in range(3)]
        purchasing = [coupa_get(server, {"limit": 1}) for _ in range(3)]
        support = [
            zendesk_export(server, {"start_time": 1775000000, "per_page": 1}) for _ in range(3)
        ]
        stats = server.stats
    assert [r.status_code for r in accounting + purchasing + support] == [200, 200, 429] * 3
    throttled = accounting[2].json()["Fault"]["Error"][0]
    assert throttled["code"] == "3001" and "ThrottleExceeded" in throttled["Message"]
    assert "Retry-After" not in accounting[2].headers, "QuickBooks sends no Retry-After by default"
    assert purchasing[2].json() == {"errors": {"error": ["Rate limit exceeded"]}}
    assert int(purchasing[2].headers["Retry-After"]) >= 1
    assert support[2].json()["error"] == "APIRateLimitExceeded"
    assert 55 <= int(support[2].headers["Retry-After"]) <= 60
    assert all(stats[s]["rate_limited"] == 1 for s in stats)


def test_default_limits_are_the_vendors(world):
    server = SimulatorServer(world)
    assert server.rate_limits["accounting"] == RateLimit(500, 60.0, retry_after=False)
    assert server.rate_limits["purchasing"] == RateLimit(25, 1.0, retry_after=False)
    assert server.rate_limits["support"] == RateLimit(10, 60.0, retry_after=True)


def test_the_window_slides(world):
    with SimulatorServer(
        world, rate_limits={**NO_RATE_LIMITS, "purchasing": RateLimit(1, 1.0)}
    ) as server:
        statuses = [coupa_get(server, {"limit": 1}).status_code for _ in range(2)]
        time.sleep(1.05)
        statuses.append(coupa_get(server, {"limit": 1}).status_code)
    assert statuses == [200, 429, 200]


# --------------------------------------------------------------------------- each fault, one by one


def inject_second(world: World, kind: str, **options) -> tuple[SimulatorServer, str]:
    """A server whose second accounting request gets `kind`; the first (page one) is done."""
    server = serve(
        world, FaultSpec(kind, systems=("accounting",), at_requests=(2,)), **options
    ).start()
    token = qbo_token(server)
    server.first_page = page(server, token, 1)
    assert server.first_page.status_code == 200
    return server, token


@pytest.mark.parametrize(
    ("kind", "header"), [("rate_limit", True), ("rate_limit_no_retry_after", False)]
)
def test_rate_limit_faults(world, kind, header):
    server, token = inject_second(world, kind)
    with server:
        response = page(server, token, 101)
        retry = page(server, token, 101)
    assert response.status_code == 429 and ("Retry-After" in response.headers) is header
    assert retry.status_code == 200
    assert server.stats["accounting"]["faults"] == {kind: 1}


def test_server_errors_use_each_vendors_body(world):
    plan = [FaultSpec("server_error", at_requests=(1,))]
    with serve(world, *plan) as server:
        qbo = page(server, qbo_token(server), 1)
        coupa = coupa_get(server, {"limit": 1})
        zendesk = zendesk_export(server, {"start_time": 0})
    assert {qbo.status_code, coupa.status_code, zendesk.status_code} <= {500, 502, 503}
    assert qbo.json()["Fault"]["type"] == "SystemFault"
    assert coupa.json()["errors"]["error"]
    assert set(zendesk.json()) == {"error", "description"}


def test_connection_reset_drops_the_connection(world):
    server, token = inject_second(world, "connection_reset")
    with server, pytest.raises(requests.ConnectionError):
        page(server, token, 101)


def test_read_timeout_delays_the_answer(world):
    server, token = inject_second(world, "read_timeout", timeout_delay_s=0.4)
    with server:
        with pytest.raises(requests.ReadTimeout):
            page(server, token, 101, timeout=0.15)
        assert page(server, token, 101).status_code == 200


@pytest.mark.parametrize("kind", ["truncated_json", "malformed_json"])
def test_broken_json_arrives_with_status_200(world, kind):
    server, token = inject_second(world, kind)
    with server:
        broken = page(server, token, 101)
        whole = page(server, token, 101)
    assert broken.status_code == 200 and broken.headers["Content-Type"].startswith(
        "application/json"
    )
    with pytest.raises(ValueError):
        json.loads(broken.content)
    if kind == "truncated_json":
        assert whole.content.startswith(broken.content) and len(broken.content) < len(whole.content)


def test_html_error_page_arrives_with_status_200(world):
    server, token = inject_second(world, "html_error_page")
    with server:
        response = page(server, token, 101)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().startswith("<html")


def test_duplicate_records_reserve_the_end_of_the_previous_page(world):
    server, token = inject_second(world, "duplicate_records", duplicate_count=3)
    with server:
        first = server.first_page.json()["QueryResponse"]["Invoice"]
        second = page(server, token, 101).json()["QueryResponse"]["Invoice"]
        clean = page(server, token, 101).json()["QueryResponse"]["Invoice"]
    assert second[:3] == first[-3:] and second[3:] == clean
    assert server.stats["accounting"]["faults"] == {"duplicate_records": 1}


def test_concurrent_update_gives_received_records_a_new_version_in_the_world(fresh_world):
    server = serve(
        fresh_world, FaultSpec("concurrent_update", systems=("accounting",), at_requests=(2,))
    ).start()
    with server:
        token = qbo_token(server)
        first = page(server, token, 1).json()["QueryResponse"]["Invoice"]
        assert page(server, token, 101).status_code == 200
    truth = fresh_world.ground_truth("accounting", as_of=SIMULATOR_FROZEN_AT).set_index("id")
    touched = [i for i in first if int(truth.loc[i["Id"], "version"]) > int(i["SyncToken"])]
    assert len(touched) == 2
    for invoice in touched:
        row = truth.loc[invoice["Id"]]
        assert row["updated_at"] == pd.Timestamp(SIMULATOR_FROZEN_AT)
        assert row["version"] == int(invoice["SyncToken"]) + 1
        assert row["record"]["MetaData"]["CreateTime"] == invoice["MetaData"]["CreateTime"]
    replay = World(WorldConfig.demo(), SimClock.frozen(SIMULATOR_FROZEN_AT)).ground_truth(
        "accounting", as_of=SIMULATOR_FROZEN_AT
    )
    assert len(replay) == len(truth), "touching adds versions, never records"


def test_expired_token_must_be_refreshed(world):
    server, token = inject_second(world, "expired_token")
    with server:
        expired = page(server, token, 101)
        still_expired = page(server, token, 101)
        refreshed = page(server, qbo_token(server), 101)
    assert (
        expired.status_code == 401
        and expired.json()["Fault"]["Error"][0]["Detail"] == "Token expired"
    )
    assert still_expired.status_code == 401
    assert refreshed.status_code == 200


def test_expired_token_on_key_based_systems_is_a_one_off_401(world):
    with serve(
        world, FaultSpec("expired_token", systems=("purchasing", "support"), at_requests=(1,))
    ) as server:
        assert coupa_get(server, {"limit": 1}).status_code == 401
        assert coupa_get(server, {"limit": 1}).status_code == 200
        assert zendesk_export(server, {"start_time": 0}).status_code == 401
        assert zendesk_export(server, {"start_time": 0}).status_code == 200


DRIFT = {
    ("accounting", "new_field"): lambda r: "ProjectRef" in r,
    ("accounting", "renamed_field"): lambda r: "TotalAmount" in r and "TotalAmt" not in r,
    ("accounting", "changed_type"): lambda r: isinstance(r["TotalAmt"], str),
    ("purchasing", "new_field"): lambda r: "payment-term" in r,
    ("purchasing", "renamed_field"): lambda r: (
        "ship_to_address" in r and "ship-to-address" not in r
    ),
    ("purchasing", "changed_type"): lambda r: isinstance(r["order-lines"][0]["quantity"], float),
    ("support", "new_field"): lambda r: "custom_status_id" in r,
    ("support", "renamed_field"): lambda r: "org_id" in r and "organization_id" not in r,
    ("support", "changed_type"): lambda r: isinstance(r["custom_fields"][0]["id"], str),
}


@pytest.mark.parametrize(("system", "mode"), list(DRIFT))
def test_schema_drift_applies_from_the_triggering_request_on(world, system, mode):
    spec = FaultSpec("schema_drift", systems=(system,), at_requests=(2,), mode=mode)
    with serve(world, spec) as server:
        fetch = {
            "accounting": lambda: page(server, qbo_token(server), 1, 5).json()["QueryResponse"][
                "Invoice"
            ],
            "purchasing": lambda: coupa_get(server, coupa_window(*WEEK, 0, 5)).json(),
            "support": lambda: zendesk_export(
                server, {"start_time": 1775000000, "per_page": 5}
            ).json()["tickets"],
        }[system]
        before, during, after = fetch(), fetch(), fetch()
    drifted = DRIFT[(system, mode)]
    assert not any(drifted(r) for r in before)
    assert all(drifted(r) for r in during + after)
    assert (
        world.ground_truth(
            system, as_of=SIMULATOR_FROZEN_AT, updated_from=WEEK[0], updated_to=WEEK[1]
        )["record"]
        .map(drifted)
        .sum()
        == 0
    ), "drift is a serving fault: the ground truth keeps the documented schema"


# ------------------------------------------------------------------------- reproducible, survivable

MIXED = "server_error=0.08,rate_limit=0.05,rate_limit_no_retry_after=0.03,connection_reset=0.04,"
MIXED += "truncated_json=0.05,malformed_json=0.04,html_error_page=0.04,duplicate_records=0.08,"
MIXED += "expired_token=0.04,read_timeout=0.03,timeout=0.6"


def outcomes(world: World, seed: int) -> list[int | str]:
    with SimulatorServer(
        world, faults=FaultPlan.parse(MIXED, seed=seed), rate_limits=NO_RATE_LIMITS
    ) as server:
        results: list[int | str] = []
        for _ in range(30):
            try:
                response = coupa_get(server, {"limit": 1, "offset": 1})
                results.append(f"{response.status_code} {response.headers['Content-Type'][:9]}")
            except requests.RequestException as error:
                results.append(type(error).__name__)
        return results


def test_the_same_seed_gives_the_same_faults(world):
    assert outcomes(world, 3) == outcomes(world, 3)
    assert outcomes(world, 3) != outcomes(world, 4)


def test_a_client_that_retries_correctly_obtains_everything(fresh_world):
    plan = FaultPlan.parse(MIXED + ",concurrent_update=0.05", seed=11)
    window = (datetime(2026, 3, 16, tzinfo=UTC), WEEK[1])
    with SimulatorServer(fresh_world, faults=plan, rate_limits=NO_RATE_LIMITS) as server:
        client = RetryingClient(server, timeout_s=0.3)
        got = {
            "accounting": (client.invoices(*window, page=250), "Id", lambda r: int(r["SyncToken"])),
            "purchasing": (
                client.purchase_orders(*window, limit=25),
                "id",
                lambda r: r["updated-at"],
            ),
            "support": (
                client.tickets(int(window[0].timestamp()), per_page=50),
                "id",
                lambda r: r["updated_at"],
            ),
        }
        stats = server.stats
    injected = sum(sum(s["faults"].values()) for s in stats.values())
    kinds = set().union(*(s["faults"] for s in stats.values()))
    assert injected >= 15 and client.retries >= 10 and len(kinds) >= 6, stats
    for system, (records, key, freshness) in got.items():
        latest: dict[str, dict] = {}
        for record in records:
            current = latest.get(str(record[key]))
            if current is None or freshness(record) >= freshness(current):
                latest[str(record[key])] = record
        truth = fresh_world.ground_truth(
            system, as_of=SIMULATOR_FROZEN_AT, updated_from=window[0], updated_to=window[1]
        )
        assert set(truth["id"]) <= set(latest), f"{system}: records missing"
        for record_id, record in zip(truth["id"], truth["record"], strict=True):
            assert latest[record_id] == record, f"{system} {record_id}"
