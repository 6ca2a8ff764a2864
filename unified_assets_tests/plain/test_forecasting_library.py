"""The forecasting library's foundations with known answers: the panel, the measures, the baselines and
the rolling-origin backtest (no Dagster involved)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from unified_assets.forecasting import PanelError, backtest, prepare_panel
from unified_assets.forecasting.baselines import (
    BASELINES,
    ExponentialSmoothing,
    Naive,
    SeasonalNaive,
    Theta,
)
from unified_assets.forecasting.metrics import bias, coverage, naive_scale, pinball, wape

WEEK_SHAPE = np.array([5.0, 9.0, 12.0, 10.0, 8.0, 2.0, 0.0])


def daily(series: dict[str, np.ndarray], start: str = "2026-01-05", **signals) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "series_id": name,
                "period": pd.date_range(start, periods=len(y), freq="D"),
                "y": y,
                **{k: v[name] for k, v in signals.items()},
            }
        )
        for name, y in series.items()
    ]
    return pd.concat(frames, ignore_index=True)


def test_the_frequency_is_inferred_and_gaps_become_explicit_zeros():
    history = daily({"a": np.tile(WEEK_SHAPE, 3)})
    history = history[history["y"] > 0]  # the zero days were never recorded
    panel = prepare_panel(history)
    assert panel.freq == "D" and panel.season_length == 7
    assert len(panel.frame) == 21 - 1  # from the first recorded day: every day present
    assert (panel.frame["y"] == 0).sum() == 2

    weekly = pd.DataFrame(
        {
            "series_id": "a",
            "period": pd.date_range("2026-01-04", periods=10, freq="W-SUN"),
            "y": 1.0,
        }
    )
    assert prepare_panel(weekly).freq == "W-SUN" and prepare_panel(weekly).season_length == 52
    monthly = pd.DataFrame(
        {"series_id": "a", "period": pd.date_range("2025-01-01", periods=14, freq="MS"), "y": 1.0}
    )
    assert prepare_panel(monthly).season_length == 12


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (pd.DataFrame({"series_id": ["a"], "y": [1.0]}), "lacks column"),
        (daily({"a": np.ones(5)}).pipe(lambda f: pd.concat([f, f.head(1)])), "more than one row"),
        (daily({"a": np.ones(2)}), "three distinct periods"),
    ],
)
def test_unusable_history_is_named(history, message):
    with pytest.raises(PanelError, match=message):
        prepare_panel(history)


def test_measures_have_known_values():
    actual, forecast = np.array([10.0, 0.0, 30.0]), np.array([12.0, 1.0, 24.0])
    assert wape(actual, forecast) == pytest.approx(9 / 40)
    assert bias(actual, forecast) == pytest.approx(-3 / 40)
    assert pinball(actual, forecast, 0.9) == pytest.approx((0.1 * 2 + 0.1 * 1 + 0.9 * 6) / 3)
    assert coverage(actual, forecast) == pytest.approx(2 / 3)
    assert naive_scale(np.tile(WEEK_SHAPE, 2), 7) == 0.0


def test_a_perfectly_seasonal_series_makes_seasonal_naive_exact():
    report = backtest(
        daily({"a": np.tile(WEEK_SHAPE, 8), "b": 3 * np.tile(WEEK_SHAPE, 8)}), horizon=7
    )
    summary = report.summary()
    assert summary.loc["seasonal_naive", "wape"] == 0.0
    assert summary.loc["naive", "wape"] > 0.3
    assert set(report.metrics["cutoff"]) == {"2026-02-08", "2026-02-15", "2026-02-22", "all"}
    assert "seasonal_naive" in report.table()


def test_baselines_floor_quantiles_at_zero_and_order_them():
    panel = prepare_panel(daily({"a": np.random.default_rng(2).poisson(1.0, 60).astype(float)}))
    for method in (Naive(14), SeasonalNaive(14)):
        forecast = method.fit(panel).predict()
        assert len(forecast) == 14 and (forecast[["q50", "q90", "q95"]] >= 0).all().all()
        assert (forecast["q50"] <= forecast["q90"]).all() and (
            forecast["q90"] <= forecast["q95"]
        ).all()


def monthly(series: dict[str, np.ndarray]) -> pd.DataFrame:
    """Monthly series that all end in December 2022."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": name,
                    "period": pd.date_range(end="2022-12-01", periods=len(y), freq="MS"),
                    "y": y,
                }
            )
            for name, y in series.items()
        ],
        ignore_index=True,
    )


MONTHS = np.arange(96)
TRENDING = 100.0 + 2.0 * MONTHS
SEASONAL = 100.0 + 30.0 * np.sin(2 * np.pi * MONTHS / 12)


@pytest.mark.parametrize("method", [ExponentialSmoothing, Theta])
def test_smoothing_and_theta_follow_a_trend_and_a_season(method):
    """On monthly series statsforecast chooses each one's form: a trend goes on, a season repeats."""
    forecast = (
        method(12).fit(prepare_panel(monthly({"trend": TRENDING, "season": SEASONAL}))).predict()
    )
    by_series = {name: group["mean"].to_numpy() for name, group in forecast.groupby("series_id")}
    np.testing.assert_allclose(by_series["trend"], 100.0 + 2.0 * np.arange(96, 108), rtol=0.02)
    np.testing.assert_allclose(by_series["season"], SEASONAL[:12], atol=3.0)


@pytest.mark.parametrize("method", [ExponentialSmoothing, Theta])
def test_smoothing_and_theta_forecast_a_series_too_short_for_statsforecast(method):
    """statsforecast refuses a few periods ("tiny datasets"); such a series still gets a forecast."""
    panel = prepare_panel(monthly({"new": np.array([3.0, 4.0, 5.0]), "long": SEASONAL}))
    forecast = method(6).fit(panel).predict()
    assert forecast.groupby("series_id").size().to_dict() == {"long": 6, "new": 6}
    new = forecast[forecast["series_id"] == "new"]
    assert new["mean"].between(2.0, 8.0).all()
    assert (new["q50"] <= new["q90"]).all() and (new["q90"] <= new["q95"]).all()


@pytest.mark.parametrize("method", [ExponentialSmoothing, Theta])
def test_smoothing_and_theta_quantiles_are_their_models_intervals(method):
    """Quantile q is the upper end of the statsforecast model's central interval at level 2q - 1 (not
    the fitted model's in-sample errors, which it has seen: on the tourism competition's quarterly
    series those put 78% of actuals under q90), and q90 covers about 90% of a noisy year unseen."""
    rng = np.random.default_rng(4)
    months = np.arange(120)
    season = 200.0 + 40.0 * np.sin(2 * np.pi * months / 12)
    noisy = {f"s{i:02d}": np.maximum(season + rng.normal(0, 25, 120), 0) for i in range(30)}
    history = monthly({name: y[:108] for name, y in noisy.items()})
    forecast = method(12, (0.5, 0.9, 0.95)).fit(prepare_panel(history)).predict()

    model = method(12).model(12).fit(noisy["s00"][:108])
    intervals = model.predict(h=12, level=[80, 90])
    first = forecast[forecast["series_id"] == "s00"]
    np.testing.assert_allclose(first["q90"], intervals["hi-80"], rtol=1e-6)
    np.testing.assert_allclose(first["q95"], intervals["hi-90"], rtol=1e-6)
    assert np.allclose(forecast["q50"], forecast["mean"])
    actual = np.concatenate([y[108:] for _, y in sorted(noisy.items())])
    assert 0.8 <= (actual <= forecast["q90"].to_numpy()).mean() <= 0.97


class Spy:
    """A method that remembers the last period and signal values it was shown."""

    seen: ClassVar[list[tuple[pd.Timestamp, float]]] = []
    name = "spy"

    def __init__(self, horizon, quantiles):
        self.horizon = horizon

    def fit(self, panel):
        self.panel = panel
        Spy.seen.append((panel.frame["period"].max(), panel.frame["future_signal"].max()))
        return self

    def predict(self):
        periods = self.panel.periods_after(self.panel.last_period, self.horizon)
        ids = self.panel.frame["series_id"].unique()
        index = pd.MultiIndex.from_product([ids, periods], names=["series_id", "period"])
        return pd.DataFrame(index=index).reset_index().assign(mean=1.0, q50=1.0, q90=2.0, q95=3.0)


def test_a_backtest_shows_each_method_nothing_after_its_origin():
    days = 60
    # A signal that reveals each day's own index: any leak shows as a value beyond the origin's index.
    index = np.arange(days, dtype=float)
    history = daily({"a": np.ones(days)}, future_signal={"a": index})
    Spy.seen = []
    backtest(history, horizon=10, cutoffs=3, methods=[Spy])
    origins = [pd.Timestamp("2026-01-05") + pd.Timedelta(days=d) for d in (29, 39, 49)]
    assert [period for period, _ in Spy.seen] == origins
    assert [signal for _, signal in Spy.seen] == [29.0, 39.0, 49.0]


def test_a_backtest_reports_each_method_at_each_origin_as_it_finishes():
    heard: list[str] = []
    backtest(daily({"a": np.ones(60)}), horizon=10, cutoffs=3, progress=heard.append)
    assert len(heard) == 3 * len(BASELINES)
    assert heard[0].startswith("backtest origin 1/3 (2026-02-03): ")
    assert heard[-1].startswith("backtest origin 3/3 (2026-02-23): ")


def test_too_short_a_history_for_the_backtest_is_named():
    with pytest.raises(PanelError, match="needs"):
        backtest(daily({"a": np.ones(20)}), horizon=7, cutoffs=3)
