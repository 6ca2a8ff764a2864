"""Safety stock from quantile forecasts, supplier lead times and a service level (no Dagster here).

The textbook rule, with its inputs taken from the forecast rather than from history: demand over the lead time
is the sum of the weekly mean forecasts over it (the last week prorated); its uncertainty comes from the
forecast's own upper quantile, read as a normal spread (sigma = (q_hi - mean) / z(q_hi)) and added up over
the lead time's weeks as independent errors; safety stock is z(service level) times that. The reorder point
is demand over the lead time plus the safety stock. Both are rounded up to whole units.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAYS_PER_WEEK = 7


def safety_stock(
    forecast: pd.DataFrame,
    lead_times: pd.DataFrame,
    service_level: float,
    upper: str = "q95",
) -> pd.DataFrame:
    """`forecast`: product_sku, week_start, forecast_mean and the `upper` quantile column, weekly from the
    first week after the origin. `lead_times`: product_sku, lead_time_days. Returns one row per SKU that
    has both, with the demand over the lead time, the safety stock and the reorder point."""
    if not 0.5 <= service_level < 1:
        raise ValueError(f"service_level must be in [0.5, 1), got {service_level}")
    from scipy.stats import norm

    upper_level = int(upper.removeprefix("q")) / 100
    z_service, z_upper = norm.ppf(service_level), norm.ppf(upper_level)
    rows = []
    weeks_ahead = forecast.sort_values("week_start").groupby("product_sku")
    known = lead_times.set_index("product_sku")["lead_time_days"]
    for sku, weeks in weeks_ahead:
        if sku not in known.index or pd.isna(known[sku]):
            continue
        lead_days = float(known[sku])
        share = lead_time_shares(lead_days, len(weeks))
        if share is None:
            continue
        mean = weeks["forecast_mean"].to_numpy()
        sigma = np.maximum(weeks[upper].to_numpy() - mean, 0.0) / z_upper
        demand = float((share * mean).sum())
        spread = math.sqrt(float((share * sigma**2).sum()))
        stock = math.ceil(z_service * spread)
        rows.append(
            {
                "product_sku": sku,
                "lead_time_days": lead_days,
                "demand_over_lead_time": round(demand, 2),
                "safety_stock": stock,
                "reorder_point": math.ceil(demand + stock),
                "service_level": service_level,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "product_sku",
            "lead_time_days",
            "demand_over_lead_time",
            "safety_stock",
            "reorder_point",
            "service_level",
        ],
    )


def lead_time_shares(lead_days: float, weeks: int) -> np.ndarray | None:
    """How much of each forecast week falls within the lead time (1 for whole weeks, a fraction for the
    last); None when the forecast does not reach that far."""
    lead_weeks = lead_days / DAYS_PER_WEEK
    if lead_weeks > weeks:
        return None
    return np.clip(lead_weeks - np.arange(weeks), 0.0, 1.0)
