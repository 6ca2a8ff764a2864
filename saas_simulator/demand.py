"""The latent demand every system's records are drawn from, and the incidents that move it.

Demand for SKU s on day d is

    share_s * exp(trend_s * years) * (1 + A_cat * cos(2 pi (doy - peak_cat) / 365.25))
            * lifecycle_s(d) * promotion_s(d) * defect_s(d)

times a weekday factor applied by the generator. Customers buy in proportion to their size while
active, fade out over the 45 days before they churn, and ramp up over 30 days after they join.
Promotions and defective batches are drawn per day from (seed, day), so the incidents of a day never
change when the world is extended further.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from saas_simulator import rng
from saas_simulator.catalog import Catalog
from saas_simulator.config import WorldConfig
from saas_simulator.names import CURRENCIES, CURRENCY_BASE_RATE

# Monday..Sunday; weekdays average 1.
WEEKLY_ORDERS = np.array([1.08, 1.12, 1.05, 1.0, 0.75, 0.14, 0.08]) / 1.0
WEEKLY_TICKETS = np.array([1.12, 1.06, 1.0, 0.98, 0.84, 0.36, 0.28])

CHURN_FADE_DAYS = 45
JOIN_RAMP_DAYS = 30
LAUNCH_RAMP_DAYS = 45
DEFECT_TICKET_DAYS = 28


@dataclass(frozen=True)
class Promotion:
    sku: int
    start: int  # first day (ordinal)
    end: int  # first day after
    lift: float
    discount: float


@dataclass(frozen=True)
class Defect:
    sku: int
    start: int  # the defective batch reaches customers; tickets start
    drop_start: int  # customers start buying less
    depth: float
    recovery_days: float
    ticket_intensity: float  # expected extra tickets per day at the peak


class Demand:
    """Per-day demand factors, and the promotions and defects behind them (extended on demand)."""

    def __init__(self, config: WorldConfig, catalog: Catalog):
        self.config = config
        self.catalog = catalog
        self.start = config.history_start.toordinal()
        self.promotions: list[Promotion] = []
        self.defects: list[Defect] = []
        self._incidents_through = self.start - 1
        self._last_defect = np.full(len(catalog.products.sku), -(10**6), dtype=np.int64)

    # --------------------------------------------------------------------------------- incidents

    def ensure_incidents(self, day: int) -> None:
        for d in range(self._incidents_through + 1, day + 1):
            self._draw_incidents(d)
        self._incidents_through = max(self._incidents_through, day)

    def _draw_incidents(self, day: int) -> None:
        gen = rng.numpy_rng(self.config.seed, rng.INCIDENTS, day)
        products = self.catalog.products
        eligible = (products.launch_day <= day - 20) & (products.discontinue_day > day + 60)
        established = products.launch_day <= day - 90
        if not eligible.any():
            return
        weights = np.where(eligible, products.popularity, 0.0)
        for _ in range(gen.poisson(self.config.promotions_per_month / 30.4)):
            sku = int(gen.choice(len(weights), p=weights / weights.sum()))
            duration = int(gen.integers(7, 22))
            self.promotions.append(
                Promotion(
                    sku,
                    day,
                    day + duration,
                    float(gen.uniform(1.4, 2.2)),
                    float(gen.uniform(0.1, 0.25)),
                )
            )
        calm = eligible & established & (day - self._last_defect > 200)
        if not calm.any():
            return
        defect_weights = np.where(calm, products.popularity, 0.0) ** 0.5
        for _ in range(gen.poisson(self.config.defects_per_quarter / 91.0)):
            sku = int(gen.choice(len(defect_weights), p=defect_weights / defect_weights.sum()))
            self._last_defect[sku] = day
            defect_weights[sku] = 0.0
            share_x_n = float(products.popularity[sku] * len(products.sku))
            intensity = max(1.4, 0.02 * self.config.rate("tickets_per_day") * share_x_n)
            self.defects.append(
                Defect(
                    sku=sku,
                    start=day,
                    drop_start=day + int(gen.integers(18, 29)),
                    depth=float(gen.uniform(0.55, 0.8)),
                    recovery_days=float(gen.uniform(60.0, 120.0)),
                    ticket_intensity=intensity,
                )
            )
            if not defect_weights.any():
                break

    # ----------------------------------------------------------------------------------- factors

    def sku_factors(self, day: int) -> np.ndarray:
        """Relative demand per SKU on `day` (before the weekday factor); zero when not on sale."""
        self.ensure_incidents(day)
        products = self.catalog.products
        years = (day - self.start) / 365.25
        doy = date.fromordinal(day).timetuple().tm_yday
        season_by_cat = 1.0 + self.catalog.season_amplitude * np.cos(
            2 * math.pi * (doy - self.catalog.season_peak_doy) / 365.25
        )
        factors = (
            products.popularity * np.exp(products.trend * years) * season_by_cat[products.category]
        )
        factors *= np.clip((day - products.launch_day) / LAUNCH_RAMP_DAYS, 0.0, 1.0)
        factors *= np.clip((products.discontinue_day - day) / 30.0, 0.0, 1.0)
        for promotion in self.promotions:
            if promotion.start <= day < promotion.end:
                factors[promotion.sku] *= promotion.lift
        for defect in self.defects:
            if day >= defect.drop_start:
                elapsed = day - defect.drop_start
                ramp = min(1.0, elapsed / 7.0)
                factors[defect.sku] *= 1.0 - defect.depth * ramp * math.exp(
                    -elapsed / defect.recovery_days
                )
        return factors

    def promotion_discount(self, day: int) -> np.ndarray:
        discount = np.zeros(len(self.catalog.products.sku))
        for promotion in self.promotions:
            if promotion.start <= day < promotion.end:
                discount[promotion.sku] = max(discount[promotion.sku], promotion.discount)
        return discount

    def defect_ticket_rates(self, day: int) -> list[tuple[int, float]]:
        """(sku, expected extra tickets today) for every defective batch in its complaint window."""
        rates = []
        for defect in self.defects:
            elapsed = day - defect.start
            if 0 <= elapsed < DEFECT_TICKET_DAYS:
                shape = (elapsed + 1) / 7.0 if elapsed < 6 else math.exp(-(elapsed - 6) / 9.0)
                rates.append((defect.sku, defect.ticket_intensity * shape))
        return rates

    def customer_activity(self, day: int) -> np.ndarray:
        """How much each customer buys today: its size, ramped in on joining, out before churn."""
        customers = self.catalog.customers
        joined = np.clip((day - customers.start_day) / JOIN_RAMP_DAYS, 0.0, 1.0)
        to_churn = customers.churn_day - day
        fade = np.where(
            to_churn <= 0, 0.0, np.clip(0.35 + 0.65 * to_churn / CHURN_FADE_DAYS, 0.0, 1.0)
        )
        return customers.size * joined * fade


def fx_rate(seed: int, currency: str, day: int) -> float:
    """Home-currency (USD) units per unit of `currency` on `day`: a smooth wave plus daily noise."""
    if currency == "USD":
        return 1.0
    index = CURRENCIES.index(currency)
    year, day_of_year = divmod(day, 366)
    noise = _fx_noise(seed, year)[day_of_year, index]
    wave = 0.035 * math.sin(2 * math.pi * day / 365.25 + 1.7 * index)
    return round(CURRENCY_BASE_RATE[currency] * (1.0 + wave + noise), 4)


@lru_cache(maxsize=64)
def _fx_noise(seed: int, block: int) -> np.ndarray:
    return rng.numpy_rng(seed, rng.FX, block).normal(0.0, 0.004, (366, len(CURRENCIES)))
