"""Forecast accuracy measures, computed over a whole backtest window (all series pooled).

Point measures (WAPE, bias, MASE) score the `mean` column, the expected demand a planner adds up; the
quantile measures (pinball, coverage) score the quantile columns. On skewed demand the two differ on purpose:
a median under-forecasts the total, a mean is above half the actuals.

WAPE and bias are ratios of sums, so a large series weighs in proportion to its volume and an intermittent
one cannot blow up a mean of percentages. MASE scales each series' error by the in-sample error of seasonal
naive, so it compares across series of different sizes; series whose history has no variation are skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POINT = "mean"  # the column holding each method's point forecast


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    total = np.abs(actual).sum()
    return float(np.abs(actual - forecast).sum() / total) if total else float("nan")


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Signed share of over-forecast: +0.05 means 5% more forecast than actual in total."""
    total = np.abs(actual).sum()
    return float((forecast - actual).sum() / total) if total else float("nan")


def pinball(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    error = actual - forecast
    return float(np.mean(np.maximum(quantile * error, (quantile - 1) * error)))


def coverage(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Share of actuals below the forecast quantile, an actual equal to it counting half (0.9 for a
    calibrated q90).

    Counting ties half is the mid-distribution rule for count data (Czado, Gneiting and Held, 2009): a SKU
    that sells nothing in most weeks has a q50 of 0, and "at or below" would count every quiet week as
    covered, so no honest q50 could score 0.5. For continuous values the two rules agree.
    """
    return float(np.mean(actual < forecast) + 0.5 * np.mean(actual == forecast))


def mase(scored: pd.DataFrame, history: pd.DataFrame, season_length: int) -> float:
    """Mean over series of |error| divided by the series' in-sample seasonal-naive |error|."""
    scales = history.groupby("series_id")["y"].apply(
        lambda y: naive_scale(y.to_numpy(), season_length)
    )
    errors = (
        scored.assign(error=(scored["y"] - scored[POINT]).abs())
        .groupby("series_id")["error"]
        .mean()
    )
    ratios = (errors / scales.reindex(errors.index)).replace([np.inf, -np.inf], np.nan).dropna()
    return float(ratios.mean()) if len(ratios) else float("nan")


def naive_scale(y: np.ndarray, season_length: int) -> float:
    """In-sample mean |error| of seasonal naive (naive when the history is shorter than a season)."""
    lag = season_length if len(y) > season_length else 1
    if len(y) <= lag:
        return float("nan")
    return float(np.abs(y[lag:] - y[:-lag]).mean())


def score(
    scored: pd.DataFrame, history: pd.DataFrame, quantiles: tuple[float, ...], season_length: int
) -> dict:
    """All measures for one method on one window; `scored` holds y, the point forecast and a column per
    quantile."""
    actual = scored["y"].to_numpy()
    measures = {
        "wape": wape(actual, scored[POINT].to_numpy()),
        "bias": bias(actual, scored[POINT].to_numpy()),
        "mase": mase(scored, history, season_length),
    }
    for q in quantiles:
        column = quantile_column(q)
        measures[f"pinball_{column}"] = pinball(actual, scored[column].to_numpy(), q)
        measures[f"coverage_{column}"] = coverage(actual, scored[column].to_numpy())
    return measures


def quantile_column(quantile: float) -> str:
    return f"q{round(quantile * 100):d}"
