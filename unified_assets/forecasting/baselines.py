"""The standard baselines a forecaster must beat: naive, seasonal naive, exponential smoothing and theta.

Each gives a point forecast per series (its `mean` and its q50) and the other quantiles, floored at zero:
demand is never negative. Exponential smoothing and theta take them from their statistical model's own
prediction intervals (statsforecast's, which grow with the model's variance at each step ahead); naive,
seasonal naive and the fallbacks from in-sample errors, their spread widened with the square root of the
steps ahead. In-sample errors of a fitted smoothing model are too small (the fit saw those periods): on the
tourism competition's quarterly series they put 78% of actuals under q90, the model's intervals 86%.
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
        frames = []
        for series_id, group in panel.frame.groupby("series_id", sort=True):
            point, quantiles = self.forecast(group["y"].to_numpy(), panel.season_length)
            frame = pd.DataFrame(
                {"series_id": series_id, "period": periods, POINT: np.maximum(point, 0.0)}
            )
            for q in self.quantiles:
                frame[quantile_column(q)] = np.maximum(quantiles[q], 0.0)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def forecast(
        self, y: np.ndarray, season_length: int
    ) -> tuple[np.ndarray, dict[float, np.ndarray]]:
        """The point forecast for the next `horizon` steps and each quantile (q50 is the point)."""
        point, errors, error_step = self.point_and_errors(y, season_length)
        return point, _from_errors(point, errors, error_step, self.quantiles)

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


class StatisticalModel(Baseline):
    """A statsforecast model fitted per series, its quantiles from the model's prediction intervals.
    Seasons longer than the model handles (weeks of a year) and series too short for it: Holt-Winters
    with additive seasonality (statsmodels), simple exponential smoothing when the history is shorter
    than two seasons; the mean of a series of fewer than three periods or all zeros."""

    longest_season: int | None = None  # the longest season the model handles; None: any

    def model(self, season_length: int):
        raise NotImplementedError

    def forecast(self, y, season_length):
        handled = self.longest_season is None or season_length <= self.longest_season
        if len(y) >= 3 and y.any() and handled:
            modelled = _statsforecast(self.model(season_length), y, self)
            if modelled is not None:
                return modelled
        return super().forecast(y, season_length)

    def point_and_errors(self, y, season_length):
        if len(y) < 3 or not y.any():
            return _mean_forecast(y, self.horizon)
        return _holt_winters(y, season_length, self.horizon)


class ExponentialSmoothing(StatisticalModel):
    """Exponential smoothing with its form chosen per series by statsforecast's AutoETS (error, trend and
    season each additive, multiplicative or none, the trend damped or not, by AICc) where the season is
    at most 24 periods (months, quarters). AutoETS models no longer season: weeks of a year get
    Holt-Winters."""

    name = "exponential_smoothing"
    longest_season = AUTO_ETS_LONGEST_SEASON

    def model(self, season_length):
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season_length)


class Theta(StatisticalModel):
    """The theta method with its variant chosen per series (statsforecast's AutoTheta: standard, optimised
    or dynamic, on the series deseasonalised when a test finds a season): the M3 competition's most
    accurate method overall."""

    name = "theta"

    def model(self, season_length):
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season_length)


def _mean_forecast(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
    return np.repeat(y.mean() if len(y) else 0.0, horizon), np.zeros(0), 1


def _from_errors(
    point: np.ndarray, errors: np.ndarray, error_step: int, quantiles: tuple[float, ...]
) -> dict[float, np.ndarray]:
    """Quantiles as the point plus each quantile of the errors, spread with the square root of how many
    `error_step`s ahead each step is."""
    spread = np.sqrt(np.ceil(np.arange(1, len(point) + 1) / error_step))
    return {
        q: point + (np.quantile(errors, q) if len(errors) and q != 0.5 else 0.0) * spread
        for q in quantiles
    }


def _statsforecast(
    model, y: np.ndarray, baseline: Baseline
) -> tuple[np.ndarray, dict[float, np.ndarray]] | None:
    """A statsforecast model's forecast and its prediction intervals as quantiles (the upper end of the
    central interval at level 2q - 1 is quantile q); None for a series the model calls too short (it
    raises NotImplementedError("tiny datasets") below a few periods more than its parameters)."""
    try:
        with warnings.catch_warnings():
            # statsforecast's variance of a model with as many parameters as periods divides by zero
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = model.fit(y.astype(float))
            levels = sorted({_interval_level(q) for q in baseline.quantiles} - {0})
            predicted = fitted.predict(h=baseline.horizon, level=levels)
    except NotImplementedError:
        return None
    point = predicted["mean"]
    quantiles = {}
    for q in baseline.quantiles:
        level = _interval_level(q)
        bound = point if level == 0 else predicted[f"{'hi' if q > 0.5 else 'lo'}-{level}"]
        # A model with no variance left (a flat series) gives NaN intervals: the point, then.
        quantiles[q] = np.where(np.isnan(bound), point, bound)
    return point, quantiles


def _interval_level(q: float) -> int:
    """The central interval (in percent) whose upper end is quantile q, or lower end below the median."""
    return round(abs(2 * q - 1) * 100)


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
