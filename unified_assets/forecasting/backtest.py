"""Rolling-origin backtests: every method forecasts from the same origins and is scored on the same actuals.

The last `cutoffs` origins sit `horizon` periods apart, ending `horizon` periods before the last period, so
the windows tile the end of the history without overlapping. At each origin a method is fitted on the panel
as it was then (`Panel.until`): nothing after the origin exists for it, signals included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from unified_assets.forecasting.baselines import BASELINES
from unified_assets.forecasting.metrics import POINT, score
from unified_assets.forecasting.panel import Panel, PanelError, prepare_panel

MethodFactory = Callable[
    [int, tuple[float, ...]], object
]  # (horizon, quantiles) -> fit/predict object


@dataclass(frozen=True)
class BacktestReport:
    metrics: pd.DataFrame  # one row per method and cutoff, plus an "all" row per method
    forecasts: pd.DataFrame  # method, cutoff, series_id, period, y, quantile columns

    def summary(self) -> pd.DataFrame:
        return (
            self.metrics[self.metrics["cutoff"] == "all"].set_index("method").drop(columns="cutoff")
        )

    def table(self) -> str:
        summary = self.summary()
        columns = [
            c for c in summary.columns if c in ("wape", "bias", "mase") or c.startswith("coverage")
        ]
        return summary[columns].to_string(float_format=lambda v: f"{v:.3f}")


def backtest(
    history: pd.DataFrame | Panel,
    horizon: int,
    cutoffs: int = 3,
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.95),
    methods: Sequence[MethodFactory] = BASELINES,
    progress: Callable[[str], None] | None = None,
) -> BacktestReport:
    """Every method fitted and scored at every origin. `progress`, when given, hears one line per method
    and origin as each finishes: a backtest of a large panel takes minutes, and silence reads as a hang."""
    panel = history if isinstance(history, Panel) else prepare_panel(history)
    origins = rolling_origins(panel, horizon, cutoffs)
    scored = []
    for number, origin in enumerate(origins, start=1):
        known = panel.until(origin)
        actual = panel.frame[
            panel.frame["period"].isin(panel.periods_after(origin, horizon))
            & panel.frame["series_id"].isin(known.frame["series_id"].unique())
        ][["series_id", "period", "y"]]
        made: dict[str, pd.DataFrame] = {}  # this origin's forecasts by method, for combinations
        for factory in methods:
            method = factory(horizon, quantiles)
            started = time.perf_counter()
            forecast = _combined(method, made)
            how = "combined from its members' forecasts"
            if forecast is None:
                forecast, how = method.fit(known).predict(), "fitted"
            made[method.name] = forecast
            joined = actual.merge(forecast, on=["series_id", "period"], how="left")
            missing = joined[POINT].isna().sum()
            if missing:
                raise PanelError(
                    f"{method.name} left {missing} series-periods unforecast at {origin}"
                )
            scored.append(joined.assign(method=method.name, cutoff=origin))
            if progress is not None:
                progress(
                    f"backtest origin {number}/{len(origins)} ({origin:%Y-%m-%d}): {method.name} "
                    f"{how} and scored in {time.perf_counter() - started:.1f} s"
                )
    forecasts = pd.concat(scored, ignore_index=True)
    return BacktestReport(_metrics(forecasts, panel, quantiles), forecasts)


def _combined(method, made: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """A combination method's forecast from the forecasts its members already made at this origin
    (`combine`, e.g. the blend of the forecaster and exponential smoothing), or None to fit it."""
    combine = getattr(method, "combine", None)
    return combine(made) if combine is not None else None


def rolling_origins(panel: Panel, horizon: int, cutoffs: int) -> list[pd.Timestamp]:
    if horizon < 1 or cutoffs < 1:
        raise ValueError("horizon and cutoffs must be at least 1")
    periods = pd.DatetimeIndex(sorted(panel.frame["period"].unique()))
    # The first origin needs some history: a season, or two horizons' worth when a season is long.
    needed = horizon * cutoffs + max(3, min(panel.season_length, 2 * horizon))
    if len(periods) < needed:
        raise PanelError(
            f"{len(periods)} periods of history; a backtest of {cutoffs} x {horizon} periods needs {needed}"
        )
    return [periods[-1 - horizon * k] for k in range(cutoffs, 0, -1)]


def _metrics(forecasts: pd.DataFrame, panel: Panel, quantiles: tuple[float, ...]) -> pd.DataFrame:
    rows = []
    for (method, cutoff), window in forecasts.groupby(["method", "cutoff"], sort=False):
        history = panel.until(cutoff).frame
        rows.append(
            {
                "method": method,
                "cutoff": str(cutoff.date()),
                **score(window, history, quantiles, panel.season_length),
            }
        )
    for method, window in forecasts.groupby("method", sort=False):
        rows.append(
            {
                "method": method,
                "cutoff": "all",
                **score(
                    window, panel.until(min(window["cutoff"])).frame, quantiles, panel.season_length
                ),
            }
        )
    return pd.DataFrame(rows)
