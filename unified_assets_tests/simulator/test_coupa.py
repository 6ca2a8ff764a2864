"""Purchasing speaks Coupa: API key, bracketed filters, offset/limit <= 50, hyphenated keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import requests

from saas_simulator import SimulatorServer
from unified_assets_tests.support.simulator_requests import coupa_all, coupa_get, coupa_window, iso
from unified_assets_tests.support.simulators import NO_RATE_LIMITS, SIMULATOR_FROZEN_AT

MONTH = (datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC))


def test_a_bad_key_is_refused(server):
    response = coupa_get(server, {}, key="wrong")
    assert response.status_code == 401
    assert response.json() == {"errors": {"error": ["Invalid API key"]}}


def test_purchase_order_fields_follow_coupa(server):
    response = coupa_get(server, coupa_window(*MONTH, offset=0, limit=5))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    orders = response.json()
    assert isinstance(orders, list) and len(orders) == 5
    order = orders[0]
    assert isinstance(order["id"], int) and order["status"] in {
        "buyer_hold",
        "issued",
        "cancelled",
        "closed",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", order["updated-at"])
    assert set(order["supplier"]) == {"id", "name", "number"}
    assert {"name", "street1", "city", "postal-code", "country"} <= set(order["ship-to-address"])
    assert set(order["ship-to-address"]["country"]) == {"code"}
    assert order["custom-fields"]["customer-account"]
    assert order["currency"]["code"] in {"USD", "EUR"}
    line = order["order-lines"][0]
    for key in ("id", "line-num", "quantity", "price", "need-by-date", "item", "source-part-num"):
        assert key in line
    assert re.fullmatch(r"\d+\.\d", line["quantity"]) and re.fullmatch(r"\d+\.\d\d", line["price"])
    assert set(line["item"]) == {"id", "item-number", "name"}


def test_paging_to_the_end_returns_the_ground_truth_once(server, world):
    orders = coupa_all(server, *MONTH)
    ids = [o["id"] for o in orders]
    assert len(ids) == len(set(ids)) > 200
    keys = [(o["updated-at"], o["id"]) for o in orders]
    assert keys == sorted(keys), "ordered by updated-at, ties by id"
    truth = world.ground_truth(
        "purchasing", as_of=SIMULATOR_FROZEN_AT, updated_from=MONTH[0], updated_to=MONTH[1]
    )
    assert [str(i) for i in ids] == truth["id"].tolist()
    assert orders == truth["record"].tolist()


def test_past_the_end_is_an_empty_array(server):
    response = coupa_get(server, coupa_window(*MONTH, offset=100_000))
    assert response.status_code == 200 and response.json() == []


def test_operators_bound_the_window(server):
    moment = pd.Timestamp("2026-04-01T06:00:00Z")  # the monthly ERP export

    def ids(params):
        return {o["id"] for o in coupa_all_params(server, params)}

    at_or_after = ids({"updated-at[gt_or_eq]": iso(moment)})
    after = ids({"updated-at[gt]": iso(moment)})
    up_to = ids({"updated-at[lt_or_eq]": iso(moment), "updated-at[gt]": "2026-03-25T00:00:00Z"})
    before = ids({"updated-at[lt]": iso(moment), "updated-at[gt]": "2026-03-25T00:00:00Z"})
    assert after < at_or_after and before < up_to
    assert at_or_after - after == up_to - before


def coupa_all_params(server, params: dict) -> list[dict]:
    orders: list[dict] = []
    while True:
        page = coupa_get(server, {**params, "offset": len(orders)}).json()
        orders += page
        if len(page) < 50:
            return orders


def test_default_order_is_by_id_and_dir_desc_reverses(server):
    ascending = coupa_get(server, {"limit": 10}).json()
    assert [o["id"] for o in ascending] == list(range(1, 11))
    newest_first = coupa_get(
        server, {**coupa_window(*MONTH, offset=0, limit=50), "dir": "desc"}
    ).json()
    keys = [(o["updated-at"], o["id"]) for o in newest_first]
    assert keys == sorted(keys, reverse=True)


def test_status_filter_and_single_order(server):
    cancelled = coupa_get(server, {"status": "cancelled", "limit": 50}).json()
    assert cancelled and {o["status"] for o in cancelled} == {"cancelled"}
    one = coupa_get_one(server, cancelled[0]["id"])
    assert one == cancelled[0]


def coupa_get_one(server, order_id: int) -> dict:
    import requests

    url = f"{server.base_urls['purchasing']}/api/purchase_orders/{order_id}"
    return requests.get(
        url, headers={"X-COUPA-API-KEY": server.credentials.coupa_api_key}, timeout=5
    ).json()


def test_bad_parameters_get_coupas_error_shape(server):
    for params in (
        {"limit": 51},
        {"offset": -1},
        {"updated-at[after]": "2026-01-01"},
        {"colour": "red"},
        {"updated-at[gt]": "soon"},
        {"order_by": "price"},
        {"dir": "up"},
    ):
        response = coupa_get(server, params)
        assert response.status_code == 400, params
        errors = response.json()["errors"]["error"]
        assert isinstance(errors, list) and errors[0]


def item_url(server, item_id) -> str:
    return f"{server.base_urls['purchasing']}/api/items/{item_id}"


def test_items_take_custom_fields_by_put_and_keep_them(server):
    headers = {"X-COUPA-API-KEY": server.credentials.coupa_api_key}
    before = requests.get(item_url(server, 3002), headers=headers, timeout=10)
    assert before.status_code == 200
    assert set(before.json()) == {"id", "item-number", "name", "active", "custom-fields"}
    put = requests.put(
        item_url(server, 3002),
        json={"custom-fields": {"safety-stock": 12, "reorder-point": 40}},
        headers=headers,
        timeout=10,
    )
    assert put.status_code == 200
    assert put.json()["custom-fields"] == {"safety-stock": 12, "reorder-point": 40}
    again = requests.get(item_url(server, 3002), headers=headers, timeout=10).json()
    assert again["custom-fields"] == {"safety-stock": 12, "reorder-point": 40}


def test_item_writes_are_refused_like_coupa_refuses_them(server):
    headers = {"X-COUPA-API-KEY": server.credentials.coupa_api_key}
    assert requests.put(item_url(server, 3002), json={}, timeout=10).status_code == 401
    assert requests.get(item_url(server, 99999), headers=headers, timeout=10).status_code == 404
    bad_json = requests.put(item_url(server, 3002), data=b"{not json", headers=headers, timeout=10)
    assert bad_json.status_code == 400
    nested = requests.put(
        item_url(server, 3002), json={"custom-fields": {"a": {"b": 1}}}, headers=headers, timeout=10
    )
    assert nested.status_code == 422 and "custom-fields" in nested.json()["errors"]


def test_item_fields_outlive_the_server_when_it_has_a_state_folder(world, tmp_path):
    for value in (5, None):
        with SimulatorServer(world, state_dir=tmp_path, rate_limits=NO_RATE_LIMITS) as running:
            headers = {"X-COUPA-API-KEY": running.credentials.coupa_api_key}
            if value is not None:
                requests.put(
                    item_url(running, 3003),
                    json={"custom-fields": {"safety-stock": value}},
                    headers=headers,
                    timeout=10,
                ).raise_for_status()
            else:
                body = requests.get(item_url(running, 3003), headers=headers, timeout=10).json()
                assert body["custom-fields"] == {"safety-stock": 5}
                assert len(running.items.updates()) == 1
