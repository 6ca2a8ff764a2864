"""One day of business drawn from (seed, day): purchase orders, the invoices they lead to, tickets.

Everything a record will ever become is decided on the day it originates: an invoice's payment, a
purchase order's delivery, a ticket's resolution are future *events* with their timestamps fixed
now. The world shows, at time t, each record's latest event at or before t. A purchase order
originating on day d also fixes the invoice that follows its delivery (1-4 weeks later) and the
complaint its late delivery causes, which is how purchasing leads accounting and how supplier delays
reach support.

All arrays are columns; one day is a handful of vectorised numpy draws, so a year of the demo world
takes a fraction of a second and a year of the benchmark world a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from saas_simulator import rng
from saas_simulator.catalog import Catalog
from saas_simulator.config import WorldConfig
from saas_simulator.demand import WEEKLY_ORDERS, WEEKLY_TICKETS, Demand, fx_rate
from saas_simulator.names import CURRENCIES
from saas_simulator.timeutil import (
    COMPANY_ZONE,
    DAY_S,
    EPOCH_ORDINAL,
    HOUR_S,
    NEVER,
    ZONES,
    la_offsets,
    zone_offset_s,
)

ZONE_NAMES = tuple(ZONES)
TONES = ("negative", "neutral", "positive")
PRIORITIES = ("urgent", "high", "normal", "low")
TICKET_TYPES = ("question", "incident", "problem", "task")
CHANNELS = ("email", "web", "phone", "api")

# topic -> P(tone: neg, neutral, pos), P(priority: urgent..low), P(type), P(mentions a product)
TOPICS: dict[str, dict] = {
    "how_to": {
        "tone": (0.1, 0.8, 0.1),
        "priority": (0, 0.05, 0.6, 0.35),
        "type": (1, 0, 0, 0),
        "sku": 0.3,
    },
    "billing": {
        "tone": (0.4, 0.6, 0),
        "priority": (0, 0.15, 0.65, 0.2),
        "type": (0.6, 0, 0, 0.4),
        "sku": 0.05,
    },
    "account_update": {
        "tone": (0, 0.85, 0.15),
        "priority": (0, 0, 0.5, 0.5),
        "type": (0, 0, 0, 1),
        "sku": 0,
    },
    "product_question": {
        "tone": (0.1, 0.7, 0.2),
        "priority": (0, 0.05, 0.65, 0.3),
        "type": (1, 0, 0, 0),
        "sku": 1.0,
    },
    "praise": {"tone": (0, 0, 1), "priority": (0, 0, 0.4, 0.6), "type": (1, 0, 0, 0), "sku": 0.4},
    "delivery_question": {
        "tone": (0.4, 0.6, 0),
        "priority": (0, 0.2, 0.7, 0.1),
        "type": (0.7, 0.3, 0, 0),
        "sku": 0.3,
    },
    "product_issue": {
        "tone": (0.7, 0.3, 0),
        "priority": (0.05, 0.35, 0.5, 0.1),
        "type": (0, 0.6, 0.4, 0),
        "sku": 1.0,
    },
    "defect": {
        "tone": (0.9, 0.1, 0),
        "priority": (0.15, 0.5, 0.35, 0),
        "type": (0, 0.5, 0.5, 0),
        "sku": 1.0,
    },
    "late_delivery": {
        "tone": (0.85, 0.15, 0),
        "priority": (0.05, 0.4, 0.55, 0),
        "type": (0, 1, 0, 0),
        "sku": 1.0,
    },
    "churn_risk": {
        "tone": (1, 0, 0),
        "priority": (0.1, 0.5, 0.4, 0),
        "type": (0, 1, 0, 0),
        "sku": 0.2,
    },
}
TOPIC_NAMES = tuple(TOPICS)
BASELINE_TOPIC_MIX = {
    "how_to": 0.26,
    "billing": 0.2,
    "account_update": 0.12,
    "product_question": 0.15,
    "praise": 0.07,
    "delivery_question": 0.08,
    "product_issue": 0.12,
}
LATE_TICKET_PROBABILITY = 0.55
PRE_CHURN_TICKETS_PER_DAY = 0.12
SENTIMENT_LABEL_SHARE = 0.35

# Event columns per system, in tie-break order (equal timestamps apply left to right).
INVOICE_EVENTS = ("created", "emailed", "voided", "paid", "edited", "fiscal_stamp")
PO_EVENTS = ("created", "issued", "revised", "exported", "cancelled", "closed")
TICKET_EVENTS = ("created", "opened", "escalated", "pending", "solved", "closed", "deleted")


@dataclass
class Chunk:
    """Columns of the records (and their lines) that one day originates."""

    records: dict[str, np.ndarray]
    lines: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.records.values())))


@dataclass
class DayChunks:
    invoices: Chunk
    purchase_orders: Chunk
    tickets: Chunk


@dataclass
class Counters:
    """How many records of each kind earlier days originated: the next record's index."""

    invoices: int = 0
    purchase_orders: int = 0
    tickets: int = 0


class GroupedSampler:
    """Draw an item of a requested group in proportion to item weights, vectorised."""

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int):
        order = np.argsort(groups, kind="stable")
        self.items = order
        self.cum = np.cumsum(weights[order])
        counts = np.bincount(groups, minlength=n_groups)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        before = np.concatenate([[0.0], self.cum])
        self.start_cum = before[self.starts]
        self.total = before[self.ends] - self.start_cum

    def draw(self, gen: np.random.Generator, requests: np.ndarray) -> np.ndarray:
        """Item per request; -1 where the requested group has no weight."""
        if len(requests) == 0:
            return np.empty(0, dtype=np.int64)
        target = self.start_cum[requests] + gen.random(len(requests)) * self.total[requests]
        position = np.searchsorted(self.cum, target, side="right")
        position = np.clip(position, self.starts[requests], np.maximum(self.ends[requests] - 1, 0))
        drawn = self.items[position].astype(np.int64)
        drawn[self.total[requests] <= 0] = -1
        return drawn


class DayGenerator:
    """Turns (seed, day) into that day's records, given the catalog and the demand model."""

    def __init__(self, config: WorldConfig, catalog: Catalog, demand: Demand):
        self.config = config
        self.catalog = catalog
        self.demand = demand
        self.seed = config.seed
        customers = catalog.customers
        self.customer_zone = np.array([ZONE_NAMES.index(z) for z in customers.zone], dtype=np.int64)
        self.customer_currency = np.array(
            [CURRENCIES.index(c) for c in customers.currency], dtype=np.int64
        )
        self.supplier_currency = np.array(
            [CURRENCIES.index(c) for c in catalog.suppliers.currency], dtype=np.int64
        )
        self.n_sku = len(catalog.products.sku)
        self.n_cat = len(catalog.category_names)
        self.n_sup = len(catalog.suppliers.name)
        self.full_activity = float(
            customers.size[customers.start_day < config.history_start.toordinal()].sum()
        )
        self._first_day = config.history_start.toordinal() - 31
        self._offset_table = np.zeros((len(ZONE_NAMES), 0), dtype=np.int64)
        self._rate_table = np.zeros((len(CURRENCIES), 0))

    # ------------------------------------------------------------------------------------ helpers

    def midnights(self, zones: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Local midnight (UTC seconds) of each (zone, day) pair."""
        if len(days) == 0:
            return np.empty(0, dtype=np.int64)
        self._cover(int(days.min()), int(days.max()))
        return (days - EPOCH_ORDINAL) * DAY_S - self._offset_table[zones, days - self._first_day]

    def fx(self, currencies: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Exchange rate (USD per unit) of each (currency, day) pair."""
        if len(days) == 0:
            return np.empty(0)
        self._cover(int(days.min()), int(days.max()))
        return self._rate_table[currencies, days - self._first_day]

    def _cover(self, low: int, high: int) -> None:
        """Grow the per-day lookup tables (zone offsets, exchange rates) to cover [low, high]."""
        end = self._first_day + self._offset_table.shape[1]
        if low >= self._first_day and high < end:
            return
        self._first_day = min(self._first_day, low - 31)
        days = range(self._first_day, max(end, high + 1) + 366)
        self._offset_table = np.array(
            [[zone_offset_s(z, d) for d in days] for z in ZONE_NAMES], dtype=np.int64
        )
        self._rate_table = np.array([[fx_rate(self.seed, c, d) for d in days] for c in CURRENCIES])

    def generate(self, day: int, counters: Counters) -> DayChunks:
        gen = rng.numpy_rng(self.seed, rng.DAY, day)
        weekday = date.fromordinal(day).weekday()
        factors = self.demand.sku_factors(day)
        activity = self.demand.customer_activity(day)
        discount = self.demand.promotion_discount(day)
        sku_by_category = GroupedSampler(self.catalog.products.category, factors, self.n_cat)
        sku_by_supplier = GroupedSampler(self.catalog.products.supplier, factors, self.n_sup)
        customer_sampler = GroupedSampler(np.zeros(len(activity), dtype=np.int64), activity, 1)
        category_level = np.bincount(
            self.catalog.products.category, weights=factors, minlength=self.n_cat
        )
        volume = (
            float(factors.sum())
            * float(activity.sum())
            / self.full_activity
            * WEEKLY_ORDERS[weekday]
        )

        orders = self._draw_orders(
            gen,
            self.config.rate("purchase_orders_per_day") * volume,
            customer_sampler,
            category_level,
            sku_by_category,
        )
        pos, po_invoice_inputs, late = self._purchase_orders(
            gen, day, orders, sku_by_supplier, counters
        )
        direct = self._draw_orders(
            gen,
            self.config.rate("direct_invoices_per_day") * volume,
            customer_sampler,
            category_level,
            sku_by_category,
        )
        invoices = self._invoices(gen, day, direct, po_invoice_inputs, discount, sku_by_category)
        tickets = self._tickets(gen, day, weekday, activity, factors, late, counters)
        return DayChunks(invoices, pos, tickets)

    # ------------------------------------------------------------------------------------- orders

    def _draw_orders(
        self,
        gen: np.random.Generator,
        expected: float,
        customer_sampler: GroupedSampler,
        category_level: np.ndarray,
        sku_by_category: GroupedSampler,
    ) -> dict[str, np.ndarray]:
        """Orders (customer, first SKU): a category by taste x demand, then a SKU in it."""
        n = int(gen.poisson(max(expected, 0.0)))
        customer = customer_sampler.draw(gen, np.zeros(n, dtype=np.int64))
        keep = customer >= 0
        customer = customer[keep]
        taste = self.catalog.customers.affinity[customer] * category_level[None, :]
        cum = np.cumsum(taste, axis=1)
        pick = gen.random(len(customer))[:, None] * cum[:, -1:]
        category = np.minimum((cum < pick).sum(axis=1), self.n_cat - 1)
        sku = sku_by_category.draw(gen, category)
        keep = sku >= 0
        return {"customer": customer[keep], "sku": sku[keep]}

    def _order_lines(
        self,
        gen: np.random.Generator,
        first_sku: np.ndarray,
        extra_mean: float,
        extra_max: int,
        extra_sampler: GroupedSampler,
        extra_groups: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(owner, sku) of every line: the first SKU plus a few from the same group."""
        n = len(first_sku)
        extra = np.minimum(gen.poisson(extra_mean, n), extra_max)
        owner_extra = np.repeat(np.arange(n), extra)
        sku_extra = extra_sampler.draw(gen, extra_groups[owner_extra])
        owner = np.concatenate([np.arange(n), owner_extra])
        sku = np.concatenate([first_sku, sku_extra])
        valid = sku >= 0
        owner, sku = owner[valid], sku[valid]
        _, unique_index = np.unique(owner * self.n_sku + sku, return_index=True)
        return owner[unique_index], sku[unique_index]

    def _quantities(
        self, gen: np.random.Generator, sku: np.ndarray, customer: np.ndarray, scale: float
    ):
        size = self.catalog.customers.size[customer]
        mean = self.catalog.products.qty_scale[sku] * (0.5 + 0.5 * np.sqrt(size)) * scale
        return 1 + gen.poisson(gen.gamma(2.0, np.maximum(mean, 0.1) / 2.0)).astype(np.int64)

    def _business_times(
        self, gen: np.random.Generator, zones: np.ndarray, days: np.ndarray
    ) -> np.ndarray:
        """A moment in local business hours (08:00-18:00) of each day."""
        return self.midnights(zones, days) + gen.integers(8 * HOUR_S, 18 * HOUR_S, len(days))

    # ---------------------------------------------------------------------------- purchase orders

    def _purchase_orders(
        self,
        gen: np.random.Generator,
        day: int,
        orders: dict[str, np.ndarray],
        sku_by_supplier: GroupedSampler,
        counters: Counters,
    ) -> tuple[Chunk, dict[str, np.ndarray], dict[str, np.ndarray]]:
        products, suppliers = self.catalog.products, self.catalog.suppliers
        customer = orders["customer"]
        n = len(customer)
        supplier = products.supplier[orders["sku"]]
        owner, sku = self._order_lines(gen, orders["sku"], 1.2, 3, sku_by_supplier, supplier)
        qty = self._quantities(gen, sku, customer[owner], 1.0)
        days = np.full(n, day, dtype=np.int64)
        company = np.full(n, ZONE_NAMES.index(COMPANY_ZONE))
        created = self._business_times(gen, company, days)
        issued = created + gen.integers(600, 20 * HOUR_S, n)
        lead = gen.integers(7, 22, n)
        need_by = day + lead
        weekday = (need_by + 6) % 7  # date.toordinal: Monday == 1 (mod 7)
        need_by = need_by + np.where(weekday == 5, 2, 0) + np.where(weekday == 6, 1, 0)
        late = gen.random(n) < suppliers.late_probability[supplier]
        delay = np.where(
            late,
            1 + gen.geometric(1.0 / suppliers.mean_delay_days[supplier]),
            -gen.integers(0, 3, n),
        )
        delivery_day = need_by + delay
        closed = self._business_times(gen, company, delivery_day)
        closed = np.maximum(closed, issued + HOUR_S)
        cancelled_flag = gen.random(n) < 0.04
        cancel_at = issued + (gen.uniform(0.5, 6.0, n) * DAY_S).astype(np.int64)
        cancel_at = np.minimum(cancel_at, closed - 60)
        cancelled = np.where(cancelled_flag, cancel_at, NEVER)
        closed = np.where(cancelled_flag, NEVER, closed)
        end = np.minimum(cancelled, closed)

        lines_per_order = np.bincount(owner, minlength=n)
        revise = (gen.random(n) < 0.10) & ~cancelled_flag
        revised = np.where(
            revise, issued + (gen.uniform(0.2, 0.8, n) * (closed - issued)).astype(np.int64), NEVER
        )
        revise_line = (gen.random(n) * np.maximum(lines_per_order, 1)).astype(np.int64)
        first_line = np.cumsum(lines_per_order) - lines_per_order
        revise_qty = np.maximum(
            1, np.round(qty[first_line + revise_line] * gen.uniform(0.6, 1.5, n))
        ).astype(np.int64)
        exported = _monthly_batch_after(issued)
        exported = np.where(exported < end, exported, NEVER)

        price = products.list_price[sku] * products.cost_ratio[sku]
        currency = self.supplier_currency[supplier]
        rate = self.fx(currency, days)
        price = np.round(price / rate[owner], 2)
        records = {
            "customer": customer,
            "supplier": supplier,
            "currency": currency,
            "need_by_day": need_by,
            "delivery_day": delivery_day,
            "late": late,
            "revise_line": revise_line,
            "revise_qty": revise_qty,
            "created": created,
            "issued": issued,
            "revised": revised,
            "exported": exported,
            "cancelled": cancelled,
            "closed": closed,
        }
        lines = {"owner": owner, "sku": sku, "qty": qty, "price": price}
        po_chunk = Chunk(records, lines)

        # What the delivery leads to: an invoice for (roughly) the final quantities, and complaints
        # if late.
        final_qty = qty.copy()
        revised_rows = np.flatnonzero(revise)
        final_qty[first_line[revised_rows] + revise_line[revised_rows]] = revise_qty[revised_rows]
        delivered = ~cancelled_flag
        invoice_inputs = {
            "po_index": np.flatnonzero(delivered),
            "customer": customer[delivered],
            "closed": closed[delivered],
            "line_owner": owner,
            "line_sku": sku,
            "line_qty": final_qty,
            "delivered": delivered,
        }
        late_inputs = {
            "po_global": counters.purchase_orders + np.arange(n),
            "customer": customer,
            "need_by_day": need_by,
            "delivery_day": delivery_day,
            "first_sku": sku[first_line],
            "late": late & delivered & (delay >= 2),
        }
        return po_chunk, invoice_inputs, late_inputs

    # ----------------------------------------------------------------------------------- invoices

    def _invoices(
        self,
        gen: np.random.Generator,
        day: int,
        direct: dict[str, np.ndarray],
        from_pos: dict[str, np.ndarray],
        discount: np.ndarray,
        sku_by_category: GroupedSampler,
    ) -> Chunk:
        products = self.catalog.products
        # Invoices for delivered purchase orders come first, then today's direct sales.
        delivered_rows = from_pos["po_index"]
        n_po = len(delivered_rows)
        remap = np.full(len(from_pos["delivered"]), -1, dtype=np.int64)
        remap[delivered_rows] = np.arange(n_po)
        keep_line = remap[from_pos["line_owner"]] >= 0
        po_owner = remap[from_pos["line_owner"][keep_line]]
        po_sku = from_pos["line_sku"][keep_line]
        po_qty = from_pos["line_qty"][keep_line]
        partial = gen.random(n_po) < 0.10
        shrink = np.where(partial, gen.uniform(0.7, 0.95, n_po), 1.0)
        po_qty = np.maximum(1, np.round(po_qty * shrink[po_owner])).astype(np.int64)
        po_created = from_pos["closed"] + gen.integers(HOUR_S, 30 * HOUR_S, n_po)

        n_direct = len(direct["customer"])
        direct_categories = products.category[direct["sku"]]
        d_owner, d_sku = self._order_lines(
            gen, direct["sku"], 1.5, 4, sku_by_category, direct_categories
        )
        d_qty = self._quantities(gen, d_sku, direct["customer"][d_owner], 0.6)
        company = np.full(n_direct, ZONE_NAMES.index(COMPANY_ZONE))
        d_created = self._business_times(gen, company, np.full(n_direct, day, dtype=np.int64))

        customer = np.concatenate([from_pos["customer"], direct["customer"]])
        created = np.concatenate([po_created, d_created])
        owner = np.concatenate([po_owner, d_owner + n_po])
        sku = np.concatenate([po_sku, d_sku])
        qty = np.concatenate([po_qty, d_qty])
        n = len(customer)
        customers = self.catalog.customers
        currency = self.customer_currency[customer]
        created_day = _company_days(created)
        rate = self.fx(currency, created_day)
        line_discount = (1.0 - customers.discount[customer[owner]]) * (1.0 - discount[sku])
        unit_price = np.round(products.list_price[sku] * line_discount / rate[owner], 2)

        contacts = self._contact_of(gen, customer)
        terms = customers.terms_days[customer]
        voided_flag = gen.random(n) < 0.02
        voided = np.where(
            voided_flag, created + (gen.uniform(1, 10, n) * DAY_S).astype(np.int64), NEVER
        )
        pays = (gen.random(n) < customers.pay_probability[customer]) & ~voided_flag
        pay_days = np.maximum(
            1, np.round(terms + customers.pay_offset_days[customer] + gen.normal(0, 5, n))
        )
        paid_day = created_day + pay_days.astype(np.int64)
        paid = self._business_times(gen, np.full(n, ZONE_NAMES.index(COMPANY_ZONE)), paid_day)
        paid = np.where(pays, np.maximum(paid, created + 600), NEVER)
        emailed = np.where(gen.random(n) < 0.7, created + gen.integers(120, 3 * HOUR_S, n), NEVER)
        lines_per_invoice = np.bincount(owner, minlength=n)
        edit = (gen.random(n) < 0.03) & ~voided_flag
        edited = np.where(edit, created + (gen.uniform(20, 120, n) * DAY_S).astype(np.int64), NEVER)
        edit_line = (gen.random(n) * np.maximum(lines_per_invoice, 1)).astype(np.int64)
        order = np.argsort(owner, kind="stable")
        owner, sku, qty, unit_price = owner[order], sku[order], qty[order], unit_price[order]
        first_line = np.cumsum(lines_per_invoice) - lines_per_invoice
        edited_qty_before = qty[first_line + edit_line]
        returned = (gen.random(n) * np.maximum(edited_qty_before // 3, 1)).astype(np.int64) + 1
        edit_qty = np.maximum(edited_qty_before - returned, 1)
        stamp = _quarter_close_after(created)
        stamp = np.where(stamp < voided, stamp, NEVER)
        records = {
            "customer": customer,
            "contact": contacts,
            "currency": currency,
            "fx": rate,
            "terms": terms,
            "from_po": np.concatenate([np.ones(n_po, bool), np.zeros(n_direct, bool)]),
            "edit_line": edit_line,
            "edit_qty": edit_qty,
            "created": created,
            "emailed": emailed,
            "voided": voided,
            "paid": paid,
            "edited": edited,
            "fiscal_stamp": stamp,
        }
        lines = {"owner": owner, "sku": sku, "qty": qty, "unit_price": unit_price}
        return Chunk(records, lines)

    def _contact_of(self, gen: np.random.Generator, customer: np.ndarray) -> np.ndarray:
        offsets = self.catalog.customers.contact_offsets
        count = offsets[customer + 1] - offsets[customer]
        return offsets[customer] + (gen.random(len(customer)) * count).astype(np.int64)

    # ------------------------------------------------------------------------------------ tickets

    def _tickets(
        self,
        gen: np.random.Generator,
        day: int,
        weekday: int,
        activity: np.ndarray,
        factors: np.ndarray,
        late: dict[str, np.ndarray],
        counters: Counters,
    ) -> Chunk:
        customers = self.catalog.customers
        parts: list[dict[str, np.ndarray]] = []

        # Everyday questions, in proportion to how much each customer buys.
        expected = (
            self.config.rate("tickets_per_day")
            * 0.8
            * WEEKLY_TICKETS[weekday]
            * float(activity.sum())
            / self.full_activity
        )
        n = int(gen.poisson(expected))
        customer = GroupedSampler(
            np.zeros(len(activity), dtype=np.int64), np.sqrt(activity), 1
        ).draw(gen, np.zeros(n, dtype=np.int64))
        mix = np.array(list(BASELINE_TOPIC_MIX.values()))
        topic_names = list(BASELINE_TOPIC_MIX)
        topic = np.array(
            [TOPIC_NAMES.index(topic_names[i]) for i in gen.choice(len(mix), n, p=mix)],
            dtype=np.int64,
        )
        parts.append(_ticket_part(customer[customer >= 0], topic[customer >= 0], day))

        # A defective batch: its buyers complain, weeks before they start buying less.
        for sku, rate in self.demand.defect_ticket_rates(day):
            k = int(gen.poisson(rate))
            if k == 0:
                continue
            weights = activity * customers.affinity[:, self.catalog.products.category[sku]]
            buyer = GroupedSampler(np.zeros(len(weights), dtype=np.int64), weights, 1).draw(
                gen, np.zeros(k, dtype=np.int64)
            )
            part = _ticket_part(buyer, np.full(k, TOPIC_NAMES.index("defect")), day)
            part["sku"] = np.full(k, sku, dtype=np.int64)
            parts.append(part)

        # Customers about to leave say so first.
        leaving = np.flatnonzero(
            (customers.churn_day - day > 0) & (customers.churn_day - day <= 45)
        )
        if len(leaving):
            counts = gen.poisson(PRE_CHURN_TICKETS_PER_DAY, len(leaving))
            who = np.repeat(leaving, counts)
            parts.append(_ticket_part(who, np.full(len(who), TOPIC_NAMES.index("churn_risk")), day))

        # Late deliveries of today's purchase orders: a complaint a day or two after the need-by
        # date.
        complain = late["late"] & (gen.random(len(late["late"])) < LATE_TICKET_PROBABILITY)
        rows = np.flatnonzero(complain)
        complaint_day = late["need_by_day"][rows] + gen.integers(1, 3, len(rows))
        before_delivery = complaint_day < late["delivery_day"][rows]
        rows, complaint_day = rows[before_delivery], complaint_day[before_delivery]
        part = _ticket_part(
            late["customer"][rows], np.full(len(rows), TOPIC_NAMES.index("late_delivery")), day
        )
        part["day"] = complaint_day.astype(np.int64)
        part["sku"] = late["first_sku"][rows]
        part["po"] = late["po_global"][rows]
        parts.append(part)

        merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        return self._ticket_chunk(gen, merged, factors)

    def _ticket_chunk(
        self, gen: np.random.Generator, t: dict[str, np.ndarray], factors: np.ndarray
    ) -> Chunk:
        n = len(t["customer"])
        topic = t["topic"]
        tone = _pick_by_topic(gen.random(n), topic, TOPIC_TABLES["tone"])
        priority = _pick_by_topic(gen.random(n), topic, TOPIC_TABLES["priority"])
        kind = _pick_by_topic(gen.random(n), topic, TOPIC_TABLES["type"])
        mentions = gen.random(n) < TOPIC_TABLES["sku"][topic, 0]
        popular = GroupedSampler(np.zeros(self.n_sku, dtype=np.int64), factors, 1).draw(
            gen, np.zeros(n, dtype=np.int64)
        )
        sku = np.where(t["sku"] >= 0, t["sku"], np.where(mentions, popular, -1))
        sku_field = (sku >= 0) & (gen.random(n) < 0.85)
        labelled = gen.random(n) < SENTIMENT_LABEL_SHARE
        channel = _pick(gen.random(n), (0.6, 0.25, 0.1, 0.05))
        contact = self._contact_of(gen, t["customer"])

        zone = self.customer_zone[t["customer"]]
        business = gen.random(n) < 0.9
        local = np.where(
            business, gen.integers(8 * HOUR_S, 18 * HOUR_S, n), gen.integers(0, DAY_S, n)
        )
        created = self.midnights(zone, t["day"]) + local
        opened = created + np.clip(gen.exponential(2.5 * HOUR_S, n), 120, 2 * DAY_S).astype(
            np.int64
        )
        escalate = gen.random(n) < np.where(tone == 0, 0.2, 0.05)
        escalated = np.where(escalate, opened + gen.integers(HOUR_S // 2, 30 * HOUR_S, n), NEVER)
        pending = np.where(
            gen.random(n) < 0.35, opened + gen.integers(HOUR_S, 24 * HOUR_S, n), NEVER
        )
        latest = np.maximum(opened, np.where(escalated < NEVER, escalated, 0))
        latest = np.maximum(latest, np.where(pending < NEVER, pending, 0))
        solved = np.where(
            gen.random(n) < 0.95,
            latest + (gen.gamma(1.5, 1.2, n) * DAY_S).astype(np.int64) + 600,
            NEVER,
        )
        closed = np.where(solved < NEVER, -(-(solved + 4 * DAY_S) // HOUR_S) * HOUR_S, NEVER)
        deleted = np.where(
            gen.random(n) < 0.015, created + gen.integers(HOUR_S // 2, 3 * DAY_S, n), NEVER
        )
        events = {
            "opened": opened,
            "escalated": escalated,
            "pending": pending,
            "solved": solved,
            "closed": closed,
        }
        for name, moments in events.items():
            events[name] = np.where(moments < deleted, moments, NEVER)
        return Chunk(
            {
                "customer": t["customer"],
                "contact": contact,
                "topic": topic,
                "tone": tone,
                "priority": priority,
                "type": kind,
                "channel": channel,
                "sku": sku,
                "sku_field": sku_field,
                "labelled": labelled,
                "po": t["po"],
                "assignee": gen.integers(0, 6, n),
                "created": created,
                **events,
                "deleted": deleted,
            }
        )


def _ticket_part(customer: np.ndarray, topic: np.ndarray, day: int) -> dict[str, np.ndarray]:
    n = len(customer)
    return {
        "customer": customer.astype(np.int64),
        "topic": topic.astype(np.int64),
        "day": np.full(n, day, dtype=np.int64),
        "sku": np.full(n, -1, dtype=np.int64),
        "po": np.full(n, -1, dtype=np.int64),
    }


def _topic_table(attribute: str) -> np.ndarray:
    """Cumulative probabilities of `attribute`'s values, one row per topic."""
    rows = np.array(
        [np.atleast_1d(np.asarray(TOPICS[t][attribute], dtype=float)) for t in TOPIC_NAMES]
    )
    if attribute == "sku":
        return rows
    cum = np.cumsum(rows, axis=1)
    return cum / cum[:, -1:]


TOPIC_TABLES = {
    attribute: _topic_table(attribute) for attribute in ("tone", "priority", "type", "sku")
}


def _pick_by_topic(u: np.ndarray, topic: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Per row, the first value whose cumulative probability (for the row's topic) exceeds u."""
    return np.minimum((cumulative[topic] <= u[:, None]).sum(axis=1), cumulative.shape[1] - 1)


def _pick(u: np.ndarray, probabilities: tuple[float, ...]) -> np.ndarray:
    cum = np.cumsum(np.asarray(probabilities, dtype=float))
    cum /= cum[-1]
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _company_days(moments: np.ndarray) -> np.ndarray:
    """Company (Los Angeles) calendar day ordinal of each moment."""
    return (moments + la_offsets(moments)) // DAY_S + EPOCH_ORDINAL


def _monthly_batch_after(moments: np.ndarray) -> np.ndarray:
    """The ERP export run (06:00:00 UTC on each 1st) strictly after each moment."""
    month = moments.astype("datetime64[s]").astype("datetime64[M]")
    this_run = month.astype("datetime64[s]").astype(np.int64) + 6 * HOUR_S
    next_run = (month + 1).astype("datetime64[s]").astype(np.int64) + 6 * HOUR_S
    return np.where(moments < this_run, this_run, next_run)


def _quarter_close_after(moments: np.ndarray) -> np.ndarray:
    """The quarter-close run (05:00:00 UTC, 2nd day of the next quarter) after each moment."""
    months = moments.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    next_quarter = ((months // 3) + 1) * 3
    start = next_quarter.astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)
    return start + DAY_S + 5 * HOUR_S
