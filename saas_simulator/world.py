"""The simulated company: one deterministic world that all three systems are views of.

`World(config, clock)` builds the cast (customers, products, suppliers) at once and the days lazily:
the first question about time t generates every day from `history_start` to t (plus one, for time
zones ahead of the company's), and later questions extend it as the clock moves. A day's records are
a pure function of (seed, day), so extending never changes what earlier days hold, and two processes
with the same config see the same records at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from saas_simulator.catalog import NEVER_DAY, Catalog, build_catalog
from saas_simulator.clock import SimClock
from saas_simulator.config import WorldConfig
from saas_simulator.demand import Demand
from saas_simulator.generate import (
    INVOICE_EVENTS,
    PO_EVENTS,
    TICKET_EVENTS,
    Counters,
    DayGenerator,
)
from saas_simulator.tables import SystemTable, SystemView, VersionIndex
from saas_simulator.text import TextCache
from saas_simulator.timeutil import company_day_of, to_utc_datetime

SYSTEMS = ("accounting", "purchasing", "support")
EVENT_COLUMNS = {"accounting": INVOICE_EVENTS, "purchasing": PO_EVENTS, "support": TICKET_EVENTS}


@dataclass
class _State:
    """Everything generated so far; replaced as a whole when the world is extended."""

    through: int
    counters: Counters
    tables: dict[str, SystemTable]
    indexes: dict[str, VersionIndex]


class World:
    """The customers, products and suppliers, and every record they produce over time."""

    def __init__(self, config: WorldConfig | None = None, clock: SimClock | None = None):
        self.config = config or WorldConfig.demo()
        self.clock = clock or SimClock.real()
        self.catalog: Catalog = build_catalog(self.config)
        self.demand = Demand(self.config, self.catalog)
        self._generator = DayGenerator(self.config, self.catalog, self.demand)
        self._lock = threading.RLock()
        start = self.config.history_start.toordinal()
        tables = {system: SystemTable(EVENT_COLUMNS[system]) for system in SYSTEMS}
        self._state = _State(start - 1, Counters(), tables, {})
        self._touches: dict[str, dict[int, list[int]]] = {system: {} for system in SYSTEMS}
        self.ticket_text_cache = TextCache()

    def __repr__(self) -> str:
        return f"World(seed={self.config.seed}, scale={self.config.scale:g}, clock={self.clock})"

    def now(self) -> datetime:
        return self.clock.now()

    # ------------------------------------------------------------------------------------ extending

    def extend_to(self, moment: datetime | str | float) -> None:
        """Make sure every record that can exist at `moment` has been generated."""
        seconds = moment if isinstance(moment, int | float) else to_utc_datetime(moment).timestamp()
        self._ensure_day(company_day_of(seconds) + 1)

    def _ensure_day(self, day: int) -> None:
        if day <= self._state.through:
            return
        with self._lock:
            state = self._state
            if day <= state.through:
                return
            counters = Counters(**vars(state.counters))
            chunks: dict[str, list] = {system: [] for system in SYSTEMS}
            for d in range(state.through + 1, day + 1):
                produced = self._generator.generate(d, counters)
                chunks["accounting"].append(produced.invoices)
                chunks["purchasing"].append(produced.purchase_orders)
                chunks["support"].append(produced.tickets)
                counters.invoices += len(produced.invoices)
                counters.purchase_orders += len(produced.purchase_orders)
                counters.tickets += len(produced.tickets)
            tables = {system: state.tables[system].extended(chunks[system]) for system in SYSTEMS}
            indexes = {system: self._extended_index(state, tables, system) for system in SYSTEMS}
            self._state = _State(day, counters, tables, indexes)

    def _extended_index(self, state: _State, tables: dict[str, SystemTable], system: str):
        """The old index merged with the new records' versions (a full build the first time)."""
        old_records = len(state.tables[system])
        new = VersionIndex.build(tables[system], self._touches[system], first_record=old_records)
        return state.indexes[system].merged(new) if system in state.indexes else new

    def view(self, system: str, moment: float) -> SystemView:
        """A consistent snapshot of one system, extended far enough for `moment` (Unix seconds)."""
        _check_system(system)
        self.extend_to(moment)
        with self._lock:
            state = self._state
            touches = {record: list(added) for record, added in self._touches[system].items()}
            return SystemView(system, state.tables[system], state.indexes[system], touches)

    # --------------------------------------------------------------------------------- ground truth

    def ground_truth(
        self,
        system: str,
        *,
        as_of: datetime | str | float,
        updated_from: datetime | str | float | None = None,
        updated_to: datetime | str | float | None = None,
        include_records: bool = True,
    ) -> pd.DataFrame:
        """One row per record whose visible version at `as_of` was updated in [from, to).

        Columns: `id` (str), `updated_at` (UTC Timestamp), `version` (int, 0-based; QuickBooks'
        SyncToken) and `record`: the exact dict the API serves for that version (before any PII
        redaction and without serving faults such as schema drift). Rows are in (updated_at, id)
        order.
        """
        moment = _seconds(as_of)
        view = self.view(system, moment)
        start = None if updated_from is None else _seconds(updated_from)
        end = None if updated_to is None else _seconds(updated_to)
        positions = view.index.visible(moment, start, end)
        records = view.index.record[positions]
        versions = view.index.version[positions]
        frame = pd.DataFrame(
            {
                "id": pd.Series((records + 1).astype(str), dtype=object).astype(str),
                "updated_at": pd.to_datetime(view.index.ts[positions], unit="s", utc=True),
                "version": versions.astype(np.int64),
            }
        )
        if include_records:
            frame["record"] = pd.Series(self.render(view, records, versions), dtype=object)
        return frame

    def render(self, view: SystemView, records: np.ndarray, versions: np.ndarray) -> list[dict]:
        """Wire dicts for (record, version) pairs of `view`'s system."""
        from saas_simulator import coupa, quickbooks, zendesk

        renderer = {
            "accounting": quickbooks.render_invoices,
            "purchasing": coupa.render_purchase_orders,
            "support": zendesk.render_tickets,
        }[view.system]
        return renderer(self, view, records, versions)

    def ticket_pii(self, ticket_id: int | str) -> list[tuple[str, str]]:
        """(kind, value) of every e-mail, phone, card and IBAN written into a ticket."""
        view = self.view("support", self.clock.timestamp())
        record = int(ticket_id) - 1
        if not 0 <= record < len(view.table):
            raise KeyError(f"no ticket {ticket_id!r} has been generated")
        from saas_simulator.zendesk import cached_ticket_text

        return list(cached_ticket_text(self, view.table.records, record).pii)

    # ------------------------------------------------------------------------------------- overlay

    def touch(self, system: str, records: Sequence[int], moment: float) -> list[int]:
        """Give each existing record a new version at `moment` (the `concurrent_update` fault).

        The new versions become part of the world: ground truth at any later `as_of` includes them.
        Returns the record indices actually touched (records that do not exist yet are skipped).
        """
        _check_system(system)
        self.extend_to(moment)
        touched = []
        with self._lock:
            state = self._state
            index = state.indexes[system]
            for record in records:
                position = index.visible_position_of(moment, record)
                if position is None:
                    continue
                at = max(int(moment), int(index.ts[position]))
                added = self._touches[system].setdefault(record, [])
                added.append(at)
                index = index.with_record_replaced(state.tables[system], record, added)
                touched.append(record)
            state.indexes[system] = index
        return touched

    # -------------------------------------------------------------------------------------- truth

    @property
    def customers(self) -> pd.DataFrame:
        """Every customer with each system's id and spelling (`*_hard`: not normalisable)."""
        c = self.catalog.customers
        return pd.DataFrame(
            {
                "customer_key": np.arange(len(c.canonical)),
                "name": c.canonical,
                "country": c.country,
                "currency": c.currency,
                "qbo_customer_id": [str(v) for v in c.qbo_id],
                "qbo_name": c.qbo_name,
                "coupa_customer_account": c.coupa_account,
                "coupa_name": c.coupa_name,
                "coupa_name_hard": c.coupa_hard,
                "zendesk_organization_id": c.zendesk_org_id,
                "zendesk_account_name": c.zendesk_name,
                "zendesk_name_hard": c.zendesk_hard,
                "joined": _dates(c.start_day),
                "churned": _dates(c.churn_day),
                "size": c.size,
            }
        )

    @property
    def products(self) -> pd.DataFrame:
        """Every SKU with its category, price, supplier and each system's id and spelling."""
        p = self.catalog.products
        return pd.DataFrame(
            {
                "sku": p.sku,
                "name": p.name,
                "category": [self.catalog.category_names[i] for i in p.category],
                "list_price": p.list_price,
                "supplier": [self.catalog.suppliers.name[i] for i in p.supplier],
                "qbo_item_id": [str(v) for v in p.qbo_item_id],
                "qbo_item_name": p.sku,
                "coupa_item_id": p.coupa_item_id,
                "coupa_item_number": p.coupa_item_number,
                "coupa_item_hard": p.coupa_hard,
                "zendesk_product": p.zendesk_product,
                "zendesk_product_hard": p.zendesk_hard,
                "launched": _dates(p.launch_day),
                "discontinued": _dates(p.discontinue_day),
                "trend_per_year": p.trend,
            }
        )

    @property
    def suppliers(self) -> pd.DataFrame:
        s = self.catalog.suppliers
        return pd.DataFrame(
            {
                "name": s.name,
                "number": s.number,
                "coupa_supplier_id": s.coupa_id,
                "currency": s.currency,
                "late_probability": s.late_probability,
                "mean_delay_days": s.mean_delay_days,
            }
        )

    def scenario(self, through: datetime | str | float | None = None) -> pd.DataFrame:
        """The incidents behind the data up to `through` (default: the clock's now), for scoring
        models.

        kind: promotion | defect | launch | discontinuation | churn | join. `start` is when it
        begins (for a defect: when complaints start), `effect_start` when demand reacts (a defect's
        demand drop), `magnitude` the demand lift (promotion) or depth of the drop (defect).
        """
        moment = self.clock.timestamp() if through is None else _seconds(through)
        last_day = company_day_of(moment)
        with self._lock:  # the generator draws incidents too; never both at once
            self.demand.ensure_incidents(last_day)
        first_day = self.config.history_start.toordinal()
        rows = []
        products = self.catalog.products
        for p in self.demand.promotions:
            if p.start <= last_day:
                rows.append(
                    ("promotion", p.start, p.end, p.start, products.sku[p.sku], None, p.lift)
                )
        for d in self.demand.defects:
            if d.start <= last_day:
                rows.append(
                    ("defect", d.start, None, d.drop_start, products.sku[d.sku], None, d.depth)
                )
        for i, sku in enumerate(products.sku):
            if first_day <= products.launch_day[i] <= last_day:
                rows.append(("launch", int(products.launch_day[i]), None, None, sku, None, None))
            if first_day <= products.discontinue_day[i] <= last_day:
                rows.append(
                    (
                        "discontinuation",
                        int(products.discontinue_day[i]),
                        None,
                        None,
                        sku,
                        None,
                        None,
                    )
                )
        customers = self.catalog.customers
        for i, name in enumerate(customers.canonical):
            if first_day <= customers.churn_day[i] <= last_day:
                rows.append(("churn", int(customers.churn_day[i]), None, None, None, name, None))
            if first_day <= customers.start_day[i] <= last_day:
                rows.append(("join", int(customers.start_day[i]), None, None, None, name, None))
        frame = pd.DataFrame(
            rows, columns=["kind", "start", "end", "effect_start", "sku", "customer", "magnitude"]
        )
        for column in ("start", "end", "effect_start"):
            frame[column] = [
                date.fromordinal(int(v)) if pd.notna(v) else None for v in frame[column]
            ]
        return frame.sort_values(["start", "kind"], kind="stable").reset_index(drop=True)

    def counts(self, as_of: datetime | str | float) -> dict[str, int]:
        """How many records each system holds at `as_of` (records, not versions)."""
        moment = _seconds(as_of)
        result = {}
        for system in SYSTEMS:
            view = self.view(system, moment)
            result[system] = int((view.table.records["created"] <= int(moment)).sum())
        return result


def _check_system(system: str) -> None:
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; use one of {', '.join(SYSTEMS)}")


def _seconds(moment: datetime | str | float) -> float:
    if isinstance(moment, int | float):
        return float(moment)
    return to_utc_datetime(moment).timestamp()


def _dates(ordinals: np.ndarray) -> list[date | None]:
    return [date.fromordinal(int(v)) if v < NEVER_DAY and v > 0 else None for v in ordinals]
