"""The retraining rules with known answers (no Dagster)."""

import pandas as pd

from unified_assets.retraining import forecast_verdict, realized_accuracy, sentiment_verdict


def realized(wapes, biases=None):
    biases = biases or [0.0] * len(wapes)
    return pd.DataFrame(
        {
            "period": pd.date_range("2026-06-01", periods=len(wapes), freq="W-MON"),
            "wape": wapes,
            "bias": biases,
            "actual": 100.0,
        }
    )


def test_two_degraded_periods_in_a_row_retrain_one_does_not():
    assert forecast_verdict(0.30, realized([0.40, 0.37]), 1000, 1050).code == "wape_degraded"
    single = forecast_verdict(0.30, realized([0.40, 0.30, 0.40]), 1000, 1050)
    assert not single.retrain and "limit 0.360" in single.reason


def test_bias_beyond_ten_percent_retrains():
    verdict = forecast_verdict(0.30, realized([0.31], biases=[-0.12]), 1000, 1010)
    assert verdict.retrain and verdict.code == "bias" and "-12.0%" in verdict.reason


def test_a_new_period_and_ten_percent_more_rows_retrain():
    assert forecast_verdict(0.30, realized([0.2]), 1000, 1100).code == "new_data"
    assert not forecast_verdict(0.30, realized([0.2]), 1000, 1099).retrain
    assert forecast_verdict(0.30, realized([]), 1000, 2000).code == "no_new_period"


def test_realized_accuracy_pools_each_period():
    frame = pd.DataFrame(
        {
            "period": ["a", "a", "b"],
            "series_id": [1, 2, 1],
            "y": [10.0, 30.0, 5.0],
            "mean": [12.0, 24.0, 5.0],
        }
    )
    measured = realized_accuracy(frame).set_index("period")
    assert measured.loc["a", "wape"] == 8 / 40 and measured.loc["a", "bias"] == -4 / 40
    assert measured.loc["b", "wape"] == 0


def test_sentiment_retrains_on_low_f1_or_many_new_labels():
    assert sentiment_verdict(5_001, 0.95).code == "new_labels"
    assert sentiment_verdict(200, 0.80).code == "f1_dropped"
    healthy = sentiment_verdict(200, 0.90)
    assert not healthy.retrain and "0.900" in healthy.reason
    assert "too few" in sentiment_verdict(10, None).reason
