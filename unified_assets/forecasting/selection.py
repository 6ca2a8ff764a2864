"""Which model to ship, and whether it may replace the one in production: decided by the backtest.

The challenger is the best of the gradient-boosted forecaster, exponential smoothing, and the average of
the two, on the same rolling origins (the forecaster must never be more than a little worse than exponential
smoothing; where it is, the backtest ships the better or the blend). A challenger replaces the champion only
when it is clearly better on the same windows and no worse on bias and calibration; the first model must
beat seasonal naive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from unified_assets.forecasting.baselines import ExponentialSmoothing
from unified_assets.forecasting.metrics import POINT, quantile_column
from unified_assets.forecasting.model import DemandForecaster
from unified_assets.forecasting.panel import Panel, prepare_panel

# A challenger's WAPE must be at most this share of the champion's on the same windows.
PROMOTION_WAPE_RATIO = 0.98
# Bias and calibration error closer than this are the same result on two backtests of the same windows.
NO_WORSE_TOLERANCE = 0.01


class Blend:
    """The average of the forecaster and exponential smoothing: mean and each quantile averaged."""

    name = "blend"

    def __init__(self, horizon: int, quantiles: tuple[float, ...] = (0.5, 0.9, 0.95), **options):
        self.horizon = horizon
        self.members = (
            DemandForecaster(horizon, quantiles, **options),
            ExponentialSmoothing(horizon, quantiles),
        )
        self.quantiles = quantiles

    @property
    def feature_names(self) -> list[str]:
        return self.members[0].feature_names

    def feature_importance(self, sample: int = 5_000) -> pd.Series:
        """The learned member's (exponential smoothing has no features)."""
        return self.members[0].feature_importance(sample)

    def fit(self, history: pd.DataFrame | Panel) -> Blend:
        panel = history if isinstance(history, Panel) else prepare_panel(history)
        for member in self.members:
            member.fit(panel)
        return self

    def predict(self, history: pd.DataFrame | Panel | None = None) -> pd.DataFrame:
        panel = None
        if history is not None:
            panel = history if isinstance(history, Panel) else prepare_panel(history)
        return self._mean([member.predict(panel) for member in self.members])

    def combine(self, forecasts: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
        """The blend's forecast from its members' forecasts made from the same origin, if `forecasts`
        (by method name) holds them all: what fitting the blend there would give (each member is
        deterministic), without fitting the members a second time. A backtest asks this first."""
        if not all(member.name in forecasts for member in self.members):
            return None
        return self._mean([forecasts[member.name] for member in self.members])

    def _mean(self, forecasts: list[pd.DataFrame]) -> pd.DataFrame:
        keys = ["series_id", "period"]
        columns = [POINT, *(quantile_column(q) for q in self.quantiles)]
        stacked = pd.concat([f[keys + columns] for f in forecasts])
        return stacked.groupby(keys, as_index=False, sort=True)[columns].mean()


CHALLENGERS = {
    DemandForecaster.name: DemandForecaster,
    ExponentialSmoothing.name: ExponentialSmoothing,
    Blend.name: Blend,
}


def best_challenger(summary: pd.DataFrame, challengers=CHALLENGERS) -> str:
    """The challenger method with the lowest backtest WAPE (`summary` is BacktestReport.summary())."""
    candidates = summary.loc[[name for name in challengers if name in summary.index]]
    return str(candidates["wape"].idxmin())


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def calibration_error(measures: pd.Series, quantiles: tuple[float, ...]) -> float:
    """The largest distance between a quantile's coverage and its nominal level."""
    return max(abs(measures[f"coverage_{quantile_column(q)}"] - q) for q in quantiles)


def promotion_decision(
    challenger: pd.Series,
    champion: pd.Series | None,
    seasonal_naive: pd.Series,
    quantiles: tuple[float, ...],
) -> Decision:
    """Each argument is one method's backtest measures on the same windows (a row of the summary)."""
    if champion is None:
        if challenger["wape"] < seasonal_naive["wape"]:
            return Decision(
                True,
                f"first model: WAPE {challenger['wape']:.3f} beats seasonal naive's "
                f"{seasonal_naive['wape']:.3f}",
            )
        return Decision(
            False,
            f"first model: WAPE {challenger['wape']:.3f} does not beat seasonal naive's "
            f"{seasonal_naive['wape']:.3f}",
        )
    failures = []
    limit = PROMOTION_WAPE_RATIO * champion["wape"]
    if challenger["wape"] > limit:
        failures.append(
            f"WAPE {challenger['wape']:.3f} above {PROMOTION_WAPE_RATIO} x champion's "
            f"{champion['wape']:.3f}"
        )
    if abs(challenger["bias"]) > abs(champion["bias"]) + NO_WORSE_TOLERANCE:
        failures.append(
            f"|bias| {abs(challenger['bias']):.3f} worse than champion's {abs(champion['bias']):.3f}"
        )
    ours, theirs = (calibration_error(m, quantiles) for m in (challenger, champion))
    if ours > theirs + NO_WORSE_TOLERANCE:
        failures.append(f"calibration error {ours:.3f} worse than champion's {theirs:.3f}")
    if failures:
        return Decision(False, "; ".join(failures))
    return Decision(
        True,
        f"WAPE {challenger['wape']:.3f} <= {PROMOTION_WAPE_RATIO} x champion's {champion['wape']:.3f}, "
        "bias and calibration no worse",
    )
