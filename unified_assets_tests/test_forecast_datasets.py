"""The real data sets of the forecast accuracy benchmark (benchmarks/forecast_datasets.py): every series
loads, aligned to end at one period with the competition's test part right after it, and the
competition's sMAPE is computed as the competition did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.forecast_datasets import ALIGNED_END, DATASETS, competition_smape, evaluate, smape
from unified_assets.forecasting.baselines import Naive

# Series and test periods per data set, as the competitions published them.
PUBLISHED = {
    "m3-monthly": (1428, 18),
    "m3-quarterly": (756, 8),
    "tourism-monthly": (366, 24),
    "tourism-quarterly": (427, 8),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_series_ends_at_one_period_with_its_test_part_right_after(name):
    dataset = DATASETS[name]
    history, test = dataset.panels()
    series, test_periods = PUBLISHED[name]
    assert history["series_id"].nunique() == test["series_id"].nunique() == series
    last = pd.date_range(end=ALIGNED_END, periods=1, freq=dataset.freq)[0]
    assert (history.groupby("series_id")["period"].max() == last).all()
    first_test = pd.date_range(last, periods=2, freq=dataset.freq)[1]
    assert (test.groupby("series_id")["period"].min() == first_test).all()
    assert (test.groupby("series_id").size() == test_periods).all()
    assert history["y"].notna().all() and test["y"].notna().all()


def test_the_competition_smape_of_the_naive_forecast_is_computed_by_hand():
    history, test = DATASETS["tourism-quarterly"].panels(limit=3)
    last = history.groupby("series_id")["y"].last()
    by_hand = np.mean(
        [
            200 * abs(y - last[series]) / (abs(y) + abs(last[series]))
            for series, y in zip(test["series_id"], test["y"], strict=True)
        ]
    )
    scored = competition_smape(history, test, [Naive])
    assert scored.loc["naive", "smape"] == pytest.approx(by_hand)
    assert scored.loc["naive", "fit_s"] > 0
    assert smape(np.array([100.0]), np.array([100.0])) == 0.0
    assert smape(np.array([100.0]), np.array([0.0])) == 200.0


def test_an_evaluation_ships_the_best_challenger_and_the_harness_checks_its_targets():
    """A few tourism series, one origin: every method is scored, the shipped model is the challenger with
    the lowest backtest WAPE, and the harness records each target against the data set's figures."""
    from benchmarks.forecast_accuracy import record
    from benchmarks.harness import Report
    from unified_assets.forecasting.selection import CHALLENGERS

    evaluation = evaluate(DATASETS["tourism-quarterly"], cutoffs=1, limit=6)
    summary = evaluation.summary
    assert evaluation.series == 6
    assert set(summary.index) == {
        "naive",
        "seasonal_naive",
        "exponential_smoothing",
        "theta",
        "demand_forecaster",
        "blend",
    }
    assert summary.loc[evaluation.shipped, "wape"] == summary.loc[list(CHALLENGERS), "wape"].min()
    assert summary["smape_test_part"].between(0, 200).all()
    # The blend is combined from its members' forecasts on the test part too: its cost is theirs.
    members = summary.loc[
        ["demand_forecaster", "exponential_smoothing"], "fit_forecast_s_test_part"
    ]
    assert summary.loc["blend", "fit_forecast_s_test_part"] == pytest.approx(members.sum())

    report = Report("forecast_accuracy")
    record(report, evaluation)
    assert report.facts["tourism-quarterly.backtest_origins"] == 1
    targets = {target["figure"]: target for target in report.targets}
    ratio = summary.loc[evaluation.shipped, "wape"] / summary.loc["exponential_smoothing", "wape"]
    assert targets["tourism-quarterly shipped_over_smoothing"]["median"] == pytest.approx(ratio)
    assert targets["tourism-quarterly shipped_over_smoothing"]["met"] == (ratio <= 1.02)
    assert {f"tourism-quarterly {m} wape" for m in summary.index} <= set(report.figures)
