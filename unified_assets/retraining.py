"""When a production model should be retrained: the rules, as plain functions over measurements (no Dagster;
the sensors gather the measurements and act on the answer).

Forecast model: realized WAPE above 1.2 x its backtest WAPE for two periods in a row, realized |bias| above
10%, or enough new data (at least one new complete period and at least 10% more rows than it was trained
on). Sentiment model: macro F1 on tickets labelled since it was trained below 0.82, or more than 5,000 new
labelled tickets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WAPE_DEGRADATION = 1.2
DEGRADED_PERIODS_IN_A_ROW = 2
MAX_ABS_BIAS = 0.10
MIN_NEW_PERIODS = 1
MIN_NEW_ROW_SHARE = 0.10
MIN_SENTIMENT_F1 = 0.82
MAX_NEW_LABELLED_TICKETS = 5_000
# The run tag a retraining request carries its reason in.
REASON_TAG = "unified_assets/retrain_reason"


@dataclass(frozen=True)
class Verdict:
    retrain: bool
    reason: str
    code: str  # short and stable, for run keys and tags


def first_line(error: BaseException) -> str:
    """Why the measurements could not be read, in one line, for a sensor's skip reason."""
    text = getattr(error, "description", None) or str(error)
    return text.splitlines()[0] if text else type(error).__name__


def realized_accuracy(actual_and_forecast: pd.DataFrame) -> pd.DataFrame:
    """Per period: WAPE and bias of `mean` against `y` (rows: period, series_id, y, mean)."""
    rows = []
    for period, group in actual_and_forecast.groupby("period", sort=True):
        total = group["y"].abs().sum()
        rows.append(
            {
                "period": period,
                "wape": (group["y"] - group["mean"]).abs().sum() / total if total else np.nan,
                "bias": (group["mean"] - group["y"]).sum() / total if total else np.nan,
                "actual": total,
            }
        )
    return pd.DataFrame(rows, columns=["period", "wape", "bias", "actual"])


def forecast_verdict(
    backtest_wape: float, realized: pd.DataFrame, trained_rows: int, rows_now: int
) -> Verdict:
    """`realized`: per new complete period since training (oldest first), from `realized_accuracy`."""
    if realized.empty:
        return Verdict(False, "no complete period since the model was trained", "no_new_period")
    limit = WAPE_DEGRADATION * backtest_wape
    over = (realized["wape"] > limit).to_numpy()
    streak = 0
    for flag in over:
        streak = streak + 1 if flag else 0
        if streak >= DEGRADED_PERIODS_IN_A_ROW:
            last = realized.iloc[-1]
            return Verdict(
                True,
                f"realized WAPE above {WAPE_DEGRADATION} x backtest ({limit:.3f}) for "
                f"{DEGRADED_PERIODS_IN_A_ROW} periods in a row (latest {last['wape']:.3f})",
                "wape_degraded",
            )
    total_actual = realized["actual"].sum()
    if total_actual:
        bias = float((realized["bias"] * realized["actual"]).sum() / total_actual)
        if abs(bias) > MAX_ABS_BIAS:
            return Verdict(
                True,
                f"realized bias {bias:+.1%} since training exceeds +-{MAX_ABS_BIAS:.0%}",
                "bias",
            )
    new_share = (rows_now - trained_rows) / trained_rows if trained_rows else 1.0
    if len(realized) >= MIN_NEW_PERIODS and new_share >= MIN_NEW_ROW_SHARE:
        return Verdict(
            True,
            f"{len(realized)} new complete period(s) and {new_share:.0%} more rows than trained on",
            "new_data",
        )
    worst = realized["wape"].max()
    return Verdict(
        False,
        f"{len(realized)} new period(s): WAPE at most {worst:.3f} (limit {limit:.3f}), "
        f"{new_share:.0%} new rows (needs {MIN_NEW_ROW_SHARE:.0%})",
        "healthy",
    )


def sentiment_verdict(new_labelled: int, f1_on_new: float | None) -> Verdict:
    if new_labelled > MAX_NEW_LABELLED_TICKETS:
        return Verdict(
            True,
            f"{new_labelled} tickets labelled since training (more than {MAX_NEW_LABELLED_TICKETS})",
            "new_labels",
        )
    if f1_on_new is not None and f1_on_new < MIN_SENTIMENT_F1:
        return Verdict(
            True,
            f"macro F1 {f1_on_new:.3f} on {new_labelled} newly labelled tickets is below "
            f"{MIN_SENTIMENT_F1}",
            "f1_dropped",
        )
    measured = f"macro F1 {f1_on_new:.3f}" if f1_on_new is not None else "too few to measure F1"
    return Verdict(False, f"{new_labelled} newly labelled tickets, {measured}", "healthy")
