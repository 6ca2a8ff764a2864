"""Batch anomalies: one day's records as the API serves them, altered the way upstream incidents alter
them, deterministically and without touching the world's own records."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from saas_simulator.anomalies import (
    ANOMALY_KINDS,
    RENAMED_SUFFIX,
    applicable_kinds,
    customer_of,
    inject,
)

DAY = ("2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z")


@pytest.fixture(scope="module")
def served(world) -> dict[str, list[dict]]:
    return {
        system: list(
            world.ground_truth(system, as_of=DAY[1], updated_from=DAY[0], updated_to=DAY[1]).record
        )
        for system in ("accounting", "purchasing", "support")
    }


def sales_lines(invoice: dict) -> list[dict]:
    return [
        line["SalesItemLineDetail"] for line in invoice["Line"] if "SalesItemLineDetail" in line
    ]


@pytest.mark.parametrize("system", ["accounting", "purchasing", "support"])
def test_the_days_largest_customer_goes_missing_and_nobody_else(served, system):
    records = served[system]
    counts = Counter(customer_of(system, record) for record in records)
    altered = inject(system, "customer_missing", records)
    (gone,) = set(counts) - {customer_of(system, record) for record in altered}
    assert counts[gone] == max(counts.values()) > 1
    assert len(altered) == len(records) - counts[gone]


def test_doubled_amounts_double_every_price_amount_and_total(served):
    invoices = served["accounting"]
    doubled = inject("accounting", "amounts_doubled", invoices)
    for before, after in zip(invoices, doubled, strict=True):
        assert after["TotalAmt"] == pytest.approx(2 * before["TotalAmt"])
        for was, now in zip(sales_lines(before), sales_lines(after), strict=True):
            assert now["UnitPrice"] == pytest.approx(2 * was["UnitPrice"])
            assert now["Qty"] == was["Qty"]
    orders = inject("purchasing", "amounts_doubled", served["purchasing"])
    first_line, doubled_line = (
        served["purchasing"][0]["order-lines"][0],
        orders[0]["order-lines"][0],
    )
    assert float(doubled_line["price"]) == pytest.approx(2 * float(first_line["price"]), abs=0.01)


def test_a_stuck_field_holds_one_value_where_it_varied(served):
    quantities = {d["Qty"] for i in served["accounting"] for d in sales_lines(i)}
    stuck = {
        d["Qty"]
        for i in inject("accounting", "field_stuck", served["accounting"])
        for d in sales_lines(i)
    }
    assert len(quantities) > 1 and stuck == {1}
    priorities = {
        ticket["priority"] for ticket in inject("support", "field_stuck", served["support"])
    }
    assert priorities == {"normal"}


@pytest.mark.parametrize("system", ["accounting", "purchasing"])
def test_the_most_frequent_sku_arrives_under_a_new_code_with_its_item_id(served, system):
    def codes(records):
        if system == "accounting":
            return [
                (d["ItemRef"]["value"], d["ItemRef"]["name"])
                for r in records
                for d in sales_lines(r)
            ]
        return [
            (line["item"]["id"], line["item"]["item-number"])
            for r in records
            for line in r["order-lines"]
        ]

    before = codes(served[system])
    (item, code), n = Counter(before).most_common(1)[0]
    after = codes(inject(system, "sku_renamed", served[system]))
    assert Counter(after)[(item, code + RENAMED_SUFFIX)] == n and (item, code) not in after
    assert [pair for pair in after if pair[0] != item] == [
        pair for pair in before if pair[0] != item
    ]


def test_half_the_days_records_are_lost_by_id(served):
    tickets = served["support"]
    halved = inject("support", "volume_halved", tickets)
    assert [t["id"] for t in halved] == sorted(t["id"] for t in tickets)[::2]


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_injection_is_deterministic_and_leaves_the_served_records_alone(served, kind):
    for system in ("accounting", "purchasing", "support"):
        if kind not in applicable_kinds(system):
            continue
        kept = copy.deepcopy(served[system])
        assert inject(system, kind, served[system]) == inject(system, kind, served[system])
        assert served[system] == kept


def test_an_anomaly_a_source_cannot_have_is_refused_by_name(served):
    with pytest.raises(ValueError, match=r"amounts_doubled.*support.*customer_missing"):
        inject("support", "amounts_doubled", served["support"])
