"""Safety stock from quantile forecasts with known answers."""

import math

import pandas as pd
import pytest
from scipy.stats import norm

from unified_assets.inventory import lead_time_shares, safety_stock


def forecast(sku: str, means, q95s) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_sku": sku,
            "week_start": pd.date_range("2026-12-07", periods=len(means), freq="W-MON"),
            "forecast_mean": means,
            "q95": q95s,
        }
    )


def test_two_weeks_of_lead_time_add_two_weeks_of_demand_and_root_two_of_spread():
    sigma = 10.0
    weekly = forecast("a", [100.0] * 4, [100.0 + norm.ppf(0.95) * sigma] * 4)
    lead = pd.DataFrame({"product_sku": ["a"], "lead_time_days": [14]})
    [row] = safety_stock(weekly, lead, service_level=0.95).to_dict(orient="records")
    assert row["demand_over_lead_time"] == pytest.approx(200.0)
    assert row["safety_stock"] == math.ceil(norm.ppf(0.95) * sigma * math.sqrt(2))
    assert row["reorder_point"] == math.ceil(200.0 + row["safety_stock"])


def test_a_higher_service_level_holds_more_stock():
    weekly = forecast("a", [50.0] * 4, [70.0] * 4)
    lead = pd.DataFrame({"product_sku": ["a"], "lead_time_days": [10]})
    stocks = [
        safety_stock(weekly, lead, level)["safety_stock"].item() for level in (0.8, 0.95, 0.99)
    ]
    assert stocks == sorted(stocks) and stocks[0] < stocks[-1]


def test_skus_without_a_lead_time_or_beyond_the_horizon_are_left_out():
    weekly = pd.concat([forecast("a", [5.0] * 2, [8.0] * 2), forecast("b", [5.0] * 2, [8.0] * 2)])
    lead = pd.DataFrame({"product_sku": ["a", "c"], "lead_time_days": [30, 7]})
    assert safety_stock(weekly, lead, 0.95).empty  # a: 30 days > 2 weeks; b: no lead time
    assert list(lead_time_shares(10, 3)) == pytest.approx([1.0, 3 / 7, 0.0])


def test_a_service_level_outside_its_range_is_named():
    with pytest.raises(ValueError, match="service_level"):
        safety_stock(forecast("a", [1.0], [2.0]), pd.DataFrame(), 1.0)
