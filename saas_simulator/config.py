"""How big and how busy the simulated world is; the world is a function of this and the time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and daily rates of the simulated company; `scale` multiplies customers and every rate.

    Invoices come from two streams: direct sales (`direct_invoices_per_day`) and one invoice per
    delivered purchase order, so the accounting system sees roughly direct + 0.95 * purchase-order
    invoices a day. Rates are weekday averages; weekends are much quieter.
    """

    seed: int = 7
    history_start: date = date(2026, 1, 1)
    customers: int = 120
    products: int = 64
    suppliers: int = 10
    purchase_orders_per_day: float = 16.0
    direct_invoices_per_day: float = 24.0
    tickets_per_day: float = 9.0
    defects_per_quarter: float = 3.0
    promotions_per_month: float = 3.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.history_start, date):
            raise ValueError(f"history_start must be a date, got {self.history_start!r}")
        for name in ("customers", "products", "suppliers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        rates = (
            "purchase_orders_per_day",
            "direct_invoices_per_day",
            "tickets_per_day",
            "defects_per_quarter",
            "promotions_per_month",
        )
        for name in rates:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale!r}")

    @classmethod
    def demo(cls, scale: float = 1.0, seed: int = 7) -> WorldConfig:
        """Laptop-small: ~120 customers, 64 SKUs, 10 suppliers, tens of records a day."""
        return cls(seed=seed, scale=scale)

    @classmethod
    def benchmark(cls, scale: float = 1.0, seed: int = 7) -> WorldConfig:
        """At scale 1, by 2026-11-01: >2M invoice lines, >500k PO lines, >300k tickets."""
        return cls(
            seed=seed,
            customers=4_000,
            products=1_500,
            suppliers=60,
            purchase_orders_per_day=1_300.0,
            direct_invoices_per_day=3_300.0,
            tickets_per_day=1_450.0,
            defects_per_quarter=12.0,
            promotions_per_month=40.0,
            scale=scale,
        )

    def replace(self, **changes: Any) -> WorldConfig:
        return dataclasses.replace(self, **changes)

    @property
    def customer_count(self) -> int:
        return max(8, round(self.customers * self.scale))

    def rate(self, name: str) -> float:
        """A daily rate after `scale`."""
        return float(getattr(self, name)) * self.scale
