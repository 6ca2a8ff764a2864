"""The standard baselines a forecaster must beat: naive, seasonal naive, exponential smoothing and theta.

Each gives a point forecast per series (its `mean` and its q50) and the other quantiles from its own
in-sample errors (their spread widened with the square root of the steps ahead), floored at zero: demand is
never negative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from unified_assets.forecasting.metrics import POINT, quantile_column
from unified_assets.forecasting.panel import Panel, prepare_panel


class Baseline:
    name = "baseline"

    def __init__(self, horizon: int, quantiles: tuple[float, ...] = (0.5, 0.9, 0.95)):
        self.horizon = horizon
        self.quantiles = quantiles
        self._panel: Panel | None = None

    def fit(self, panel: Panel) -> Baseline:
        self._panel = panel
        return self

    def predict(self, history: Panel | pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast after the fitted history, or after a newer one (a baseline is its own fit)."""
        if history is not None:
            self.fit(history if isinstance(history, Panel) else prepare_panel(history))
        if self._panel is None:
            raise RuntimeError(f"{self.name}: fit before predict")
        panel = self._panel
        periods = panel.periods_after(panel.last_period, self.horizon)
        steps = np.arange(1, self.horizon + 1)
        frames = []
        for series_id, group in panel.frame.groupby("series_id", sort=True):
            y = group["y"].to_numpy()
            point, errors, error_step = self.point_and_errors(y, panel.season_length)
            spread = np.sqrt(np.ceil(steps / error_step))
            frame = pd.DataFrame(
                {"series_id": series_id, "period": periods, POINT: np.maximum(point, 0.0)}
            )
            for q in self.quantiles:
                offset = np.quantile(errors, q) if len(errors) and q != 0.5 else 0.0
                frame[quantile_column(q)] = np.maximum(point + offset * spread, 0.0)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def point_and_errors(
        self, y: np.ndarray, season_length: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """The point forecast for the next `horizon` steps, in-sample errors, and how many steps ahead
        those errors are (their spread grows with each multiple of it)."""
        raise NotImplementedError


class Naive(Baseline):
    name = "naive"

    def point_and_errors(self, y, season_length):
        return np.repeat(y[-1], self.horizon), np.diff(y), 1


class SeasonalNaive(Baseline):
    """The last full season repeated; naive when the history is shorter than a season."""

    name = "seasonal_naive"

    def point_and_errors(self, y, season_length):
        if len(y) <= season_length:
            return Naive.point_and_errors(self, y, season_length)
        last_season = y[-season_length:]
        point = np.resize(last_season, self.horizon)
        return point, y[season_length:] - y[:-season_length], season_length


# statsforecast's AutoETS, as R's forecast::ets it follows, models no season longer than this.
AUTO_ETS_LONGEST_SEASON = 24


class ExponentialSmoothing(Baseline):
    """Exponential smoothing with its form chosen per series by statsforecast's AutoETS (error, trend and
    season each additive, multiplicative or none, the trend damped or not, by AICc) where the season is
    at most 24 periods (months, quarters). Longer seasons (weeks of a year), which AutoETS does not model,
    and series too short for it: Holt-Winters with additive seasonality (statsmodels), simple exponential
    smoothing when the history is shorter than two seasons."""

    name = "exponential_smoothing"

    def point_and_errors(self, y, season_length):
        if len(y) < 3 or not y.any():
            return _mean_forecast(y, self.horizon)
        if season_length > AUTO_ETS_LONGEST_SEASON:
            return _holt_winters(y, season_length, self.horizon)
        from statsforecast.models import AutoETS

        return _statsforecast(AutoETS(season_length=season_length), y, season_length, self.horizon)


class Theta(Baseline):
    """The theta method with its variant chosen per series (statsforecast's AutoTheta: standard, optimised
    or dynamic, on the series deseasonalised when a test finds a season): the M3 competition's most
    accurate method overall. Series too short for it: as exponential smoothing's."""

    name = "theta"

    def point_and_errors(self, y, season_length):
        if len(y) < 3 or not y.any():
            return _mean_forecast(y, self.horizon)
        from statsforecast.models import AutoTheta

        return _statsforecast(
            AutoTheta(season_length=season_length), y, season_length, self.horizon
        )


def _mean_forecast(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
    return np.repeat(y.mean() if len(y) else 0.0, horizon), np.zeros(0), 1


def _statsforecast(
    model, y: np.ndarray, season_length: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """A statsforecast model's forecast and in-sample errors; Holt-Winters' for a series the model calls
    too short (it raises NotImplementedError("tiny datasets") below a few periods more than its
    parameters)."""
    try:
        with warnings.catch_warnings():
            # statsforecast's variance of a model with as many parameters as periods divides by zero
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = model.fit(y.astype(float))
    except NotImplementedError:
        return _holt_winters(y, season_length, horizon)
    point = fitted.predict(h=horizon)["mean"]
    return point, y - fitted.predict_in_sample()["fitted"], 1


def _holt_winters(
    y: np.ndarray, season_length: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, int]:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing as HoltWinters

    seasonal = season_length > 1 and len(y) >= 2 * season_length
    model = HoltWinters(
        y,
        seasonal="add" if seasonal else None,
        seasonal_periods=season_length if seasonal else None,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short or flat series
        fitted = model.fit()
    return fitted.forecast(horizon), y - fitted.fittedvalues, 1


# Backtested beside the challengers at every training. Theta is scored on the real data sets
# (benchmarks/forecast_accuracy.py), not in every training.
BASELINES = (Naive, SeasonalNaive, ExponentialSmoothing)
