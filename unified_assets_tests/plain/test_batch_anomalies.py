"""The batch anomaly score on synthetic invoice batches: clean days pass, each kind of quiet failure is
flagged and explained by the feature it moved."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from unified_assets.batch_anomalies import (
    MIN_BATCHES,
    SHAPES,
    BatchAnomalyDetector,
    NotEnoughBatches,
    Usual,
    summarise,
    usual_rows,
)

SHAPE = SHAPES["invoices"]
FIRST = date(2026, 3, 2)
CUSTOMERS = [f"C{n}" for n in range(40)]
CUSTOMER_WEIGHTS = np.array([8.0, 4.0] + [1.0] * 38)
SKUS = [f"SKU-{n}" for n in range(30)]
PRICES = np.linspace(2.0, 90.0, len(SKUS))


def invoices(day: date, seed: int, *, rows_factor: float = 1.0) -> list[dict]:
    """A day's invoices: busier on weekdays, one large customer, each SKU at its own price."""
    rng = np.random.default_rng(seed)
    rows = rng.poisson((160 if day.weekday() < 5 else 50) * rows_factor)
    customers = rng.choice(CUSTOMERS, size=rows, p=CUSTOMER_WEIGHTS / CUSTOMER_WEIGHTS.sum())
    return [
        {
            "customer_ref": str(customer),
            "lines": [
                {
                    "item_name": SKUS[sku],
                    "unit_price": float(PRICES[sku] * rng.normal(1.0, 0.01)),
                    "quantity": float(rng.integers(1, 12)),
                }
                for sku in rng.integers(0, len(SKUS), size=rng.integers(1, 4))
            ],
        }
        for customer in customers
    ]


def batch(day: date, records: list[dict]):
    return summarise(pa.Table.from_pylist(records), SHAPE, day)


@pytest.fixture(scope="module")
def detector() -> BatchAnomalyDetector:
    days = [FIRST + timedelta(days=n) for n in range(84)]
    return BatchAnomalyDetector(SHAPE).fit(
        [batch(day, invoices(day, n)) for n, day in enumerate(days)]
    )


SCORED = [FIRST + timedelta(days=84 + n) for n in range(7)]


def judged(detector, day, records):
    return detector.score(batch(day, records))


def test_clean_days_after_the_learned_ones_are_usual(detector):
    verdicts = [judged(detector, day, invoices(day, 1000 + n)) for n, day in enumerate(SCORED)]
    assert not [v.describe() for v in verdicts if v.anomalous]


def test_a_busier_day_than_usual_is_not_a_fault(detector):
    """A promotion doubles a day's invoices: nothing is lost, so its volume is no fault (the same
    change downwards, half a day lost, is one: see below)."""
    for n, day in enumerate(SCORED[:5]):
        verdict = judged(detector, day, invoices(day, 3000 + n, rows_factor=2.0))
        assert not verdict.anomalous, verdict.describe()
        assert verdict.drivers[0].feature == "volume", verdict.describe()


def doubled(records):
    return [
        {**r, "lines": [{**line, "unit_price": 2 * line["unit_price"]} for line in r["lines"]]}
        for r in records
    ]


def without_largest_customer(records):
    return [r for r in records if r["customer_ref"] != "C0"]


def quantity_stuck(records):
    return [{**r, "lines": [{**line, "quantity": 1.0} for line in r["lines"]]} for r in records]


def sku_renamed(records):
    rename = {"SKU-7": "SKU-7-R2", "SKU-8": "SKU-8-R2"}
    return [
        {
            **r,
            "lines": [
                {**line, "item_name": rename.get(line["item_name"], line["item_name"])}
                for line in r["lines"]
            ],
        }
        for r in records
    ]


def halved(records):
    return records[::2]


@pytest.mark.parametrize(
    ("alter", "driver"),
    [
        (doubled, "price level"),
        (without_largest_customer, "missing customers"),
        (quantity_stuck, "line quantity concentration"),
        (sku_renamed, "unknown SKUs"),
        (halved, "volume"),
    ],
)
def test_each_quiet_failure_is_flagged_and_named_by_what_it_moved(detector, alter, driver):
    for n, day in enumerate(SCORED[:5]):  # weekdays
        verdict = judged(detector, day, alter(invoices(day, 2000 + n)))
        assert verdict.anomalous, verdict.describe()
        assert driver in [d.feature for d in verdict.drivers[:2]], verdict.describe()
        assert f"{driver} " in verdict.describe() and "usually" in verdict.describe()
        if driver == "missing customers":
            assert verdict.absent_customer is not None and verdict.absent_customer[0] == "C0"


def test_too_few_landed_days_is_said_with_the_table_and_the_numbers():
    days = [FIRST + timedelta(days=n) for n in range(MIN_BATCHES - 1)]
    with pytest.raises(
        NotEnoughBatches, match=f"invoices: {MIN_BATCHES - 1} landed days.*{MIN_BATCHES}"
    ):
        BatchAnomalyDetector(SHAPE).fit(
            [batch(day, invoices(day, n)) for n, day in enumerate(days)]
        )


def test_an_empty_day_is_summarised_not_refused():
    empty = pa.Table.from_pylist(
        invoices(FIRST, 0)[:0], schema=pa.Table.from_pylist(invoices(FIRST, 0)).schema
    )
    summary = summarise(empty, SHAPE, FIRST)
    assert summary.rows == 0 and summary.customers == {} and summary.sku_lines == {}


def steady_history(first: date, last: date) -> dict[date, int]:
    return {first + timedelta(days=n): 100 for n in range((last - first).days + 1)}


def test_a_monthly_batch_jobs_day_is_usual_for_itself_and_only_for_itself():
    """An ERP export on every 1st of the month: the next 1st is expected to be a peak again, and the
    other days keep their weekday's usual."""
    history = steady_history(date(2026, 1, 1), date(2026, 4, 30))
    for month in (1, 2, 3, 4):
        history[date(2026, month, 1)] = 900
    assert usual_rows(history, date(2026, 5, 1)) == 900
    assert usual_rows(history, date(2026, 5, 2)) == 100


def test_a_quarterly_batch_jobs_day_is_usual_for_itself_but_not_a_month_later():
    """A quarter's close on its 2nd day: the next quarter's 2nd day is a peak again; the 2nd of the
    month after a close is an ordinary day, not a collapse."""
    history = steady_history(date(2026, 1, 1), date(2026, 8, 31))
    history[date(2026, 4, 2)] = history[date(2026, 7, 2)] = 2_400
    assert usual_rows(history, date(2026, 7, 2)) == 2_400
    assert usual_rows(history, date(2026, 8, 2)) == 100
    assert usual_rows(history, date(2026, 10, 2)) == 2_400


def test_a_customer_who_left_months_ago_is_no_longer_expected():
    """The largest customer stopped buying ten weeks before the learned window's end: recent days
    weigh more in what is usual, so a batch is no longer expected to hold its rows (over the whole
    window's count, a 160-row batch would still expect about 5, absent by chance once in 130 days)
    while a customer still buying keeps its share."""
    days = [FIRST + timedelta(days=n) for n in range(84)]
    usual = Usual.learn(
        [
            batch(day, invoices(day, n) if n < 14 else without_largest_customer(invoices(day, n)))
            for n, day in enumerate(days)
        ]
    )
    assert usual.customer_share["C0"] * 160 < 2
    assert usual.customer_share["C1"] * 160 > 10
