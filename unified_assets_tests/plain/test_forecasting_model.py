"""The demand forecaster on synthetic panels with known answers: it learns a planted leading signal, sees
nothing after its origin, states calibrated quantiles, and copes with short, sparse and flat series."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from unified_assets.forecasting import DemandForecaster, PanelError, backtest, prepare_panel
from unified_assets.forecasting.baselines import SeasonalNaive
from unified_assets.forecasting.features import FeatureBuilder, Layout
from unified_assets.forecasting.selection import (
    CHALLENGERS,
    Blend,
    best_challenger,
    promotion_decision,
)

WEEK_SHAPE = np.array([1.1, 1.2, 1.1, 1.0, 0.9, 0.4, 0.3])


def poisson_panel(series: int = 30, days: int = 210, seed: int = 0, lead: int | None = None):
    """Weekly-seasonal Poisson demand around levels from 2 to 200 a day. With `lead`, a third of each
    day's demand was ordered `lead` days earlier and the orders are a signal column."""
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2026-01-05", periods=days, freq="D")
    frames = []
    for index in range(series):
        level = 2.0 * 100 ** (index / (series - 1))
        mean = (
            level * np.resize(WEEK_SHAPE, days) * (1 + 0.3 * np.sin(np.arange(days) / 20 + index))
        )
        frame = pd.DataFrame({"series_id": f"sku-{index:02d}", "period": periods})
        if lead is None:
            frame["y"] = rng.poisson(mean)
        else:
            orders = rng.poisson(rng.gamma(0.5, 2 * mean))  # lumpy: few, large orders
            frame["ordered"] = orders
            frame["y"] = rng.poisson(mean / 2) + np.concatenate([np.zeros(lead), orders[:-lead]])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_the_forecast_covers_every_series_for_the_horizon_with_ordered_quantiles():
    history = poisson_panel(series=6, days=120)
    forecast = DemandForecaster(horizon=14).fit(history).predict()
    assert len(forecast) == 6 * 14
    assert forecast["period"].min() == pd.Timestamp(history["period"].max()) + pd.Timedelta(days=1)
    assert list(forecast.columns) == ["series_id", "period", "mean", "q50", "q90", "q95"]
    values = forecast[["q50", "q90", "q95"]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert (np.diff(values, axis=1) >= 0).all()


def test_the_model_learns_a_leading_signal_planted_in_the_data():
    history = poisson_panel(series=20, days=200, lead=3)
    methods = [functools.partial(DemandForecaster, signals=()), DemandForecaster]
    summary = backtest(history, horizon=3, cutoffs=3, methods=methods).summary()
    with_signal = summary.loc["demand_forecaster", "wape"]
    without = summary.loc["demand_forecaster_without_signals", "wape"]
    assert with_signal < 0.75 * without


def order_book_panel(series: int = 20, weeks: int = 90, seed: int = 0, ahead: int = 4):
    """Weekly demand where half of each week's quantity arrives on orders placed 1 to `ahead` weeks
    earlier; `due_k` in week t is what was already on order then for week t + k (an order book)."""
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2024-01-01", periods=weeks, freq="W-MON")
    frames = []
    for index in range(series):
        level = 5.0 * 40 ** (index / (series - 1))
        placed = rng.poisson(rng.gamma(0.5, 2 * level / ahead, (weeks, ahead)))  # [week, lead - 1]
        arriving = np.zeros(weeks + ahead)
        book = np.zeros((weeks, ahead))  # [week, k - 1]: due k weeks after it, known by then
        for lead in range(1, ahead + 1):
            arriving[lead : weeks + lead] += placed[:, lead - 1]
        for week in range(weeks):
            for k in range(1, ahead + 1):
                book[week, k - 1] = sum(
                    placed[week + k - lead, lead - 1]
                    for lead in range(k, ahead + 1)
                    if 0 <= week + k - lead <= week
                )
        frame = pd.DataFrame({"series_id": f"sku-{index:02d}", "period": periods})
        frame["y"] = rng.poisson(level / 2, weeks) + arriving[:weeks]
        for k in range(1, ahead + 1):
            frame[f"due_{k}"] = book[:, k - 1]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


ORDER_BOOK = {"due": ("due_1", "due_2", "due_3", "due_4")}


def test_an_order_book_is_read_for_the_period_each_forecast_is_for():
    history = order_book_panel()
    methods = [DemandForecaster]
    as_plain_signals = backtest(prepare_panel(history), 4, 3, methods=methods).summary()
    as_known_ahead = backtest(prepare_panel(history, ORDER_BOOK), 4, 3, methods=methods).summary()
    assert (
        as_known_ahead.loc["demand_forecaster", "wape"]
        < 0.9 * as_plain_signals.loc["demand_forecaster", "wape"]
    )


def test_a_known_ahead_family_must_name_signal_columns():
    with pytest.raises(PanelError, match=r"'due'.*due_9"):
        prepare_panel(order_book_panel(series=2, weeks=10), {"due": ("due_1", "due_9")})


def test_features_as_of_an_origin_do_not_change_when_the_future_does():
    history = poisson_panel(series=4, days=90, lead=2)
    panel = prepare_panel(history)
    origin = 60
    tampered = panel.frame.copy()
    future = tampered["period"] > panel.frame["period"].unique()[origin]
    tampered.loc[future, ["y", "ordered"]] *= 10
    rows = np.repeat(np.arange(4), 5), np.full(20, origin), np.tile(np.arange(1, 6), 4)
    before, after = (
        FeatureBuilder(Layout.of(p, ("ordered",)), "D", 7).rows(*rows)
        for p in (panel, type(panel)(tampered, panel.freq, panel.signals))
    )
    np.testing.assert_array_equal(before, after)


def test_an_order_book_as_of_an_origin_does_not_change_when_the_future_does():
    panel = prepare_panel(order_book_panel(series=3, weeks=40), ORDER_BOOK)
    origin = 30
    tampered = panel.frame.copy()
    future = tampered["period"] > panel.frame["period"].unique()[origin]
    tampered.loc[future, ["y", *ORDER_BOOK["due"]]] *= 10
    rows = np.repeat(np.arange(3), 6), np.full(18, origin), np.tile(np.arange(1, 7), 3)
    before, after = (
        FeatureBuilder(Layout.of(p, ORDER_BOOK["due"]), p.freq, 52, ORDER_BOOK).rows(*rows)
        for p in (panel, type(panel)(tampered, panel.freq, panel.signals))
    )
    np.testing.assert_array_equal(before, after)
    known_ahead = before[:, -3:]  # at, before and through the target period
    assert not np.isnan(known_ahead).all(axis=0).any()


def test_quantiles_are_calibrated_on_unseen_periods():
    report = backtest(
        poisson_panel(series=30, days=200, seed=3),
        horizon=14,
        cutoffs=3,
        methods=[DemandForecaster],
    )
    summary = report.summary().loc["demand_forecaster"]
    for q in (50, 90, 95):
        assert summary[f"coverage_q{q}"] == pytest.approx(q / 100, abs=0.03), q
    assert abs(summary["bias"]) <= 0.05


def test_the_model_beats_seasonal_naive_on_noisy_seasonal_demand():
    summary = backtest(
        poisson_panel(series=30, days=210, seed=5),
        horizon=14,
        cutoffs=3,
        methods=[SeasonalNaive, DemandForecaster],
    ).summary()
    assert summary.loc["demand_forecaster", "wape"] < 0.8 * summary.loc["seasonal_naive", "wape"]


def test_short_sparse_and_flat_series_get_sane_forecasts():
    history = pd.concat(
        [
            poisson_panel(series=5, days=100),
            pd.DataFrame(  # a new product with two days of sales
                {"series_id": "new", "period": pd.date_range("2026-04-13", periods=2), "y": [4, 6]}
            ),
            pd.DataFrame(  # never sold
                {"series_id": "dead", "period": pd.date_range("2026-01-05", periods=100), "y": 0}
            ),
            pd.DataFrame(  # one sale a month
                {
                    "series_id": "rare",
                    "period": pd.date_range("2026-01-05", periods=100),
                    "y": (np.arange(100) % 30 == 0) * 5,
                }
            ),
        ]
    )
    forecast = DemandForecaster(horizon=7).fit(history).predict().set_index("series_id")
    assert np.isfinite(forecast[["q50", "q90", "q95"]].to_numpy()).all()
    assert forecast.loc["dead", "q95"].max() < 0.5
    assert 0 < forecast.loc["new", "q50"].mean() < 20
    assert forecast.loc["rare", "q50"].mean() < 2


def test_monthly_history_is_forecast_by_month():
    months = pd.date_range("2022-01-01", periods=48, freq="MS")
    rng = np.random.default_rng(1)
    history = pd.concat(
        pd.DataFrame(
            {
                "series_id": name,
                "period": months,
                "y": rng.poisson(scale * (1 + 0.4 * np.cos(2 * np.pi * months.month / 12))),
            }
        )
        for name, scale in (("a", 50), ("b", 400), ("c", 5))
    )
    forecast = DemandForecaster(horizon=6).fit(history).predict()
    assert list(forecast["period"].unique()) == list(
        pd.date_range("2026-01-01", periods=6, freq="MS")
    )


def test_asking_for_a_signal_the_history_lacks_is_named():
    with pytest.raises(PanelError, match="promotions"):
        DemandForecaster(horizon=7, signals=("promotions",)).fit(poisson_panel(series=2, days=60))


def test_predict_before_fit_is_named():
    with pytest.raises(RuntimeError, match="fit before predict"):
        DemandForecaster(horizon=7).predict()


def test_a_fitted_model_scores_a_newer_history_without_refitting():
    history = poisson_panel(series=5, days=120, lead=2)
    cutoff = pd.Timestamp("2026-04-20")
    model = DemandForecaster(horizon=7).fit(history[history["period"] <= cutoff])
    newer = model.predict(history)
    assert newer["period"].min() == pd.Timestamp(history["period"].max()) + pd.Timedelta(days=1)
    assert not newer["mean"].equals(model.predict()["mean"])
    with pytest.raises(PanelError, match="ordered"):
        model.predict(history.drop(columns="ordered"))


def openmp_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "openmp"}


def test_the_model_fits_in_one_openmp_thread_unless_asked_for_more(monkeypatch):
    """Threads spinning for each other on a busy machine made fits many times slower (see the model's
    `n_threads`): one unless the caller asks. A model pickled before the setting existed keeps to one."""
    seen = []
    original = FeatureBuilder.rows

    def recording(self, *args, **kwargs):
        seen.append(openmp_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FeatureBuilder, "rows", recording)
    history = poisson_panel(series=3, days=90)
    model = DemandForecaster(horizon=7).fit(history)
    assert seen and all(threads == {1} for threads in seen), seen
    del model.n_threads
    seen.clear()
    model.predict()
    assert seen and all(threads == {1} for threads in seen), seen
    seen.clear()
    DemandForecaster(horizon=7, n_threads=2).fit(history)
    assert all(threads == {2} for threads in seen), seen


def measures(wape, bias=0.0, coverage=(0.5, 0.9, 0.95)):
    return pd.Series(
        {"wape": wape, "bias": bias}
        | {
            f"coverage_q{round(q * 100)}": c
            for q, c in zip((0.5, 0.9, 0.95), coverage, strict=True)
        }
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "reason"),
    [
        (measures(0.40), None, True, "beats seasonal naive"),
        (measures(0.55), None, False, "does not beat seasonal naive"),
        (measures(0.39), measures(0.40), True, "no worse"),
        (measures(0.395), measures(0.40), False, "WAPE 0.395 above 0.98 x"),
        (measures(0.30, bias=0.08), measures(0.40, bias=0.02), False, "bias"),
        (measures(0.30, coverage=(0.5, 0.8, 0.95)), measures(0.40), False, "calibration"),
    ],
)
def test_the_promotion_rule(challenger, champion, promote, reason):
    decision = promotion_decision(challenger, champion, measures(0.5), (0.5, 0.9, 0.95))
    assert decision.promote is promote
    assert reason in decision.reason


def test_the_challenger_is_the_best_of_model_smoothing_and_blend_by_backtest():
    history = poisson_panel(series=8, days=150, seed=9)
    report = backtest(history, horizon=7, cutoffs=2, methods=[SeasonalNaive, *CHALLENGERS.values()])
    summary = report.summary()
    chosen = best_challenger(summary)
    assert summary.loc[chosen, "wape"] == summary.loc[list(CHALLENGERS), "wape"].min()
    blend = report.forecasts[report.forecasts["method"] == "blend"]
    assert (blend[["q50", "q90", "q95"]].diff(axis=1).iloc[:, 1:] >= 0).all().all()


def test_the_backtest_blends_its_members_forecasts_as_a_fitted_blend_would():
    """Beside its members the blend is averaged from their forecasts at each origin (not fitted a second
    time); alone it is fitted. Both give the same forecasts."""
    history = poisson_panel(series=6, days=120, seed=4)
    heard = []
    beside = backtest(
        history, horizon=7, cutoffs=2, methods=list(CHALLENGERS.values()), progress=heard.append
    )
    assert sum("blend combined from its members' forecasts" in line for line in heard) == 2
    alone = backtest(history, horizon=7, cutoffs=2, methods=[Blend])
    blended = beside.forecasts[beside.forecasts["method"] == "blend"].reset_index(drop=True)
    pd.testing.assert_frame_equal(blended, alone.forecasts.reset_index(drop=True))


MONTHS = pd.date_range("2019-01-01", periods=60, freq="MS")


def monthly_panel(kind: str, series: int = 8, seed: int = 0) -> pd.DataFrame:
    """Monthly demand of one kind, and a product launched 15 months ago beside it (a short series: three
    months old at the first origin of a backtest of two half-years).

    trending: levels growing 1-3% a month; seasonal: a yearly cycle of +-40%; intermittent: a sale in
    about one month in four, of a few to a dozen units."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(MONTHS))
    frames = []
    for index in range(series):
        level = rng.uniform(50, 500)
        if kind == "trending":
            y = rng.poisson(level * (1 + rng.uniform(0.01, 0.03) * t))
        elif kind == "seasonal":
            y = rng.poisson(level * (1 + 0.4 * np.sin(2 * np.pi * t / 12 + index)))
        else:
            y = (rng.random(len(t)) < 0.25) * rng.integers(2, 12, len(t))
        frames.append(pd.DataFrame({"series_id": f"{kind}-{index}", "period": MONTHS, "y": y}))
    launched = pd.DataFrame(
        {"series_id": "launched", "period": MONTHS[-15:], "y": rng.poisson(40, 15)}
    )
    return pd.concat([*frames, launched], ignore_index=True)


def test_a_trending_series_is_forecast_to_keep_rising():
    history = monthly_panel("trending", seed=2)
    forecast = DemandForecaster(horizon=12).fit(history).predict()
    for series_id, future in forecast.groupby("series_id"):
        if series_id == "launched":
            continue
        past = history[history["series_id"] == series_id]["y"].to_numpy()
        assert future["mean"].mean() > 1.02 * past[-6:].mean(), series_id
        assert future["mean"].iloc[-1] > future["mean"].iloc[0], series_id


@pytest.mark.parametrize("kind", ["trending", "seasonal", "intermittent"])
def test_the_selection_ships_what_the_backtest_found_best_on_each_kind_of_series(kind):
    """Whatever the kind of demand (a launched product beside it), every challenger forecasts every
    series, and the model shipped is never worse than exponential smoothing or the forecaster alone on
    the same origins; on trending and seasonal demand its bias stays within 5%."""
    history = monthly_panel(kind, seed=7)
    report = backtest(history, horizon=6, cutoffs=2, methods=list(CHALLENGERS.values()))
    summary = report.summary()
    shipped = best_challenger(summary)
    assert (
        summary.loc[shipped, "wape"]
        <= summary.loc[["exponential_smoothing", "demand_forecaster"], "wape"].min()
    )
    forecast_series = report.forecasts.groupby("method")["series_id"].nunique()
    assert (forecast_series == history["series_id"].nunique()).all(), forecast_series
    if kind != "intermittent":
        assert abs(summary.loc[shipped, "bias"]) <= 0.05, summary
