"""The causal structure models should find, and the personal data redaction must catch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from saas_simulator import SimClock, World, WorldConfig
from unified_assets.redaction import iban_valid, luhn_valid

YEAR_END = datetime(2026, 11, 24, tzinfo=UTC)
SKU_FIELD, SENTIMENT_FIELD = 360001234501, 360001234503


@pytest.fixture(scope="module")
def year() -> World:
    return World(WorldConfig.demo(), SimClock.frozen(YEAR_END))


@pytest.fixture(scope="module")
def orders(year) -> pd.DataFrame:
    """Purchase-order lines (not cancelled): customer key, SKU, order day, quantity."""
    by_account = dict(
        zip(year.customers.coupa_customer_account, year.customers.customer_key, strict=True)
    )
    by_number = dict(zip(year.products.coupa_item_number, year.products.sku, strict=True))
    rows = [
        (
            by_account[o["custom-fields"]["customer-account"]],
            by_number[line["item"]["item-number"]],
            o["created-at"][:10],
            float(line["quantity"]),
        )
        for o in year.ground_truth("purchasing", as_of=YEAR_END)["record"]
        if o["status"] != "cancelled"
        for line in o["order-lines"]
    ]
    return _frame(rows)


@pytest.fixture(scope="module")
def invoices(year) -> pd.DataFrame:
    by_id = dict(zip(year.customers.qbo_customer_id, year.customers.customer_key, strict=True))
    rows = [
        (
            by_id[i["CustomerRef"]["value"]],
            line["SalesItemLineDetail"]["ItemRef"]["name"],
            i["TxnDate"],
            line["SalesItemLineDetail"]["Qty"],
        )
        for i in year.ground_truth("accounting", as_of=YEAR_END)["record"]
        if i.get("PrivateNote") != "Voided"
        for line in i["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]
    return _frame(rows)


@pytest.fixture(scope="module")
def tickets(year) -> pd.DataFrame:
    by_spelling = dict(zip(year.products.zendesk_product, year.products.sku, strict=True))
    by_org = dict(
        zip(year.customers.zendesk_organization_id, year.customers.customer_key, strict=True)
    )
    rows = []
    for t in year.ground_truth("support", as_of=YEAR_END)["record"]:
        fields = {f["id"]: f["value"] for f in t["custom_fields"]}
        text = f"{t['subject']}\n{t['description']}"
        rows.append(
            (
                by_spelling.get(fields[SKU_FIELD]),
                t["created_at"][:10],
                fields[SENTIMENT_FIELD],
                text,
                t["id"],
                by_org[t["organization_id"]],
                t["tags"],
            )
        )
    frame = pd.DataFrame(
        rows, columns=["sku", "day", "sentiment", "text", "id", "customer", "tags"]
    )
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer", "sku", "day", "qty"])
    frame["day"] = pd.to_datetime(frame["day"])
    frame["week"] = (frame["day"] - pd.Timestamp("2026-01-05")).dt.days // 7
    return frame


def test_purchase_orders_lead_invoices_by_their_delivery_time(year, orders, invoices):
    """Per customer and SKU, weekly ordered quantity predicts invoiced quantity weeks later, not the
    same week.
    """
    weeks = np.arange(0, 44)
    index = pd.MultiIndex.from_product([range(len(year.customers)), year.products.sku, weeks])
    shape = (len(year.customers), len(year.products), len(weeks))

    def cube(frame):
        summed = frame.groupby(["customer", "sku", "week"])["qty"].sum()
        return summed.reindex(index, fill_value=0).to_numpy().reshape(shape)

    ordered, invoiced = cube(orders), cube(invoices)

    def corr(lag):
        return np.corrcoef(ordered[:, :, : len(weeks) - lag].ravel(), invoiced[:, :, lag:].ravel())[
            0, 1
        ]

    by_lag = {lag: corr(lag) for lag in range(5)}
    best = max(by_lag, key=by_lag.get)
    assert best in (1, 2, 3), by_lag
    assert by_lag[best] > 1.5 * by_lag[0], by_lag


def test_a_defective_batch_raises_complaints_before_demand_falls(year, orders, invoices, tickets):
    """Complaints about a SKU spike first; weeks later its share of its category's sales falls."""
    sales = pd.concat([orders, invoices])
    sales["category"] = sales["sku"].map(
        dict(zip(year.products.sku, year.products.category, strict=True))
    )
    defects = year.scenario(YEAR_END).query("kind == 'defect'")
    defects = defects[
        pd.to_datetime(defects["effect_start"]) + timedelta(days=49) < pd.Timestamp("2026-11-20")
    ]
    assert len(defects) >= 5
    lines = {period: np.zeros(2) for period in ("before", "complaints", "after")}
    complaints_before = complaints_after = 0.0
    for defect in defects.itertuples():
        start, drop = pd.Timestamp(defect.start), pd.Timestamp(defect.effect_start)
        about = tickets[tickets["sku"] == defect.sku]
        complaints_before += (
            (about["day"] >= start - timedelta(days=63)) & (about["day"] < start)
        ).sum() / 3
        complaints_after += (
            (about["day"] >= start) & (about["day"] < start + timedelta(days=21))
        ).sum()
        category = sales[
            sales["category"] == sales.loc[sales["sku"] == defect.sku, "category"].iloc[0]
        ]
        periods = {
            "before": (start - timedelta(days=42), start),
            "complaints": (start, drop),
            "after": (drop + timedelta(days=7), drop + timedelta(days=49)),
        }
        for period, (low, high) in periods.items():
            in_period = category[(category["day"] >= low) & (category["day"] < high)]
            lines[period] += [(in_period["sku"] == defect.sku).sum(), len(in_period)]
    share = {period: counts[0] / counts[1] for period, counts in lines.items()}
    assert complaints_after > 4 * max(complaints_before, 1.0), (complaints_before, complaints_after)
    assert share["complaints"] > 0.85 * share["before"], "while customers complain, they still buy"
    assert share["after"] < 0.85 * min(share["before"], share["complaints"]), share


def test_churned_customers_stop_ordering_after_complaining(year, orders, tickets):
    churned = year.customers.dropna(subset=["churned"])
    churned = churned[pd.to_datetime(churned["churned"]) < pd.Timestamp("2026-10-01")]
    assert len(churned) >= 2
    ordered_before = warned = 0
    for customer in churned.itertuples():
        when = pd.Timestamp(customer.churned)
        theirs = orders[orders["customer"] == customer.customer_key]
        assert (theirs["day"] >= when).sum() == 0
        ordered_before += (theirs["day"] < when).sum()
        said = tickets[(tickets["customer"] == customer.customer_key) & (tickets["day"] < when)]
        warned += any(
            "churn_risk" in tags for tags in said[said["day"] >= when - timedelta(days=45)]["tags"]
        )
    assert ordered_before > 0
    assert warned >= 0.8 * len(churned), (
        "churning customers complain in the weeks before they leave"
    )


def test_tickets_carry_each_kind_of_personal_data_and_it_is_valid(year, tickets):
    found: dict[str, list[str]] = {"email": [], "phone": [], "card": [], "iban": []}
    for ticket_id, text in zip(tickets["id"], tickets["text"], strict=True):
        for kind, value in year.ticket_pii(ticket_id):
            assert value in text
            found[kind].append(value)
    assert all(len(values) >= 20 for values in found.values()), {
        k: len(v) for k, v in found.items()
    }
    for card in found["card"]:
        assert re.fullmatch(r"\d{4}([ -]?)\d{4,6}\1\d{4,5}(\1\d{4})?", card), card
        assert luhn_valid(re.sub(r"\D", "", card)), card
    assert any(" " in c for c in found["card"]) and any("-" in c for c in found["card"])
    for iban in found["iban"]:
        assert iban_valid(iban.replace(" ", "")), iban
    phones = found["phone"]
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in phones), "US national"
    assert any(re.fullmatch(r"\+44 .*|0\d{2,4} \d+.*", p) for p in phones), "UK"
    assert any(p.startswith("+49") for p in phones), "DE"
    assert any(re.fullmatch(r"\+\d{10,14}", p) for p in phones), "E.164"
    assert all(re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", e) for e in found["email"])


NEGATIVE_WORDS = re.compile(
    r"frustrat|unacceptable|disappoint|not great|other suppliers|faulty|defective|not arrived|"
    r"unhappy|still not|reviewing whether",
    re.I,
)
POSITIVE_WORDS = re.compile(r"thank|appreciate|great service|great to work|improvement|kudos", re.I)


def test_agent_sentiment_labels_a_third_of_tickets_and_matches_the_tone(tickets):
    labelled = tickets.dropna(subset=["sentiment"])
    assert 0.25 < len(labelled) / len(tickets) < 0.45
    assert set(labelled["sentiment"]) == {"negative", "neutral", "positive"}
    negative = labelled[labelled["sentiment"] == "negative"]["text"]
    positive = labelled[labelled["sentiment"] == "positive"]["text"]
    assert negative.str.contains(NEGATIVE_WORDS).mean() > 0.9
    assert positive.str.contains(POSITIVE_WORDS).mean() > 0.9
    assert positive.str.contains(NEGATIVE_WORDS).mean() < 0.1


def test_email_tickets_name_their_sender(year):
    records = year.ground_truth(
        "support", as_of=YEAR_END, updated_from=YEAR_END - timedelta(days=20)
    )["record"]
    email = [t for t in records if t["via"]["channel"] == "email"]
    assert email and all("@" in t["via"]["source"]["from"]["address"] for t in email)
    assert {t["via"]["channel"] for t in records} >= {"email", "web", "voice"}
