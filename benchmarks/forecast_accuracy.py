"""Benchmark: forecast accuracy on real public series (benchmarks/forecast_datasets.py), against the
targets the platform's forecaster is held to on data nobody here tuned it to:

- the model the platform ships (what its selection picks on the backtest) at most 2% worse in WAPE than
  exponential smoothing;
- the learned forecaster at least 10% better in WAPE than seasonal naive, and better than exponential
  smoothing on at least half of the data sets;
- the shipped model's |bias| at most 5%, its q90 coverage 90 +- 3 points;
- on M3 monthly, the competition's sMAPE over its own test part (18 months ahead) at most 13.2 for the
  shipped model, and the forecaster's fit and forecast of all 1,428 series at most 30 s.

Accuracy is deterministic: each data set is evaluated once, whatever --repeat says.
"""

from __future__ import annotations

from benchmarks.extraction import Options
from benchmarks.forecast_datasets import DATASETS, Evaluation, evaluate
from benchmarks.harness import Report

FORECASTER, SMOOTHING, NAIVE = "demand_forecaster", "exponential_smoothing", "seasonal_naive"


def run_forecast_accuracy(options: Options, datasets: tuple[str, ...] = tuple(DATASETS)) -> Report:
    report = Report("forecast_accuracy")
    beats_smoothing = []
    for name in datasets:
        print(f"  {name} ...", flush=True)
        evaluation = evaluate(DATASETS[name])
        record(report, evaluation)
        summary = evaluation.summary
        beats_smoothing.append(summary.loc[FORECASTER, "wape"] < summary.loc[SMOOTHING, "wape"])
    report.add(
        "datasets_where_forecaster_is_not_better_than_smoothing",
        "share",
        1 - sum(beats_smoothing) / len(beats_smoothing),
    )
    report.target(
        "datasets_where_forecaster_is_not_better_than_smoothing",
        0.5,
        "the forecaster beats exponential smoothing on at least half of the data sets",
    )
    return report


def record(report: Report, evaluation: Evaluation) -> None:
    """The data set's figures and its targets, each named after the data set."""
    name, summary, shipped = evaluation.dataset.name, evaluation.summary, evaluation.shipped
    report.facts[f"{name}.series"] = evaluation.series
    report.facts[f"{name}.backtest_origins"] = evaluation.cutoffs
    report.facts[f"{name}.shipped"] = shipped
    report.facts[f"{name}.summary"] = summary.round(4).reset_index().to_dict(orient="records")
    for method in summary.index:
        report.add(f"{name} {method} wape", "WAPE", summary.loc[method, "wape"])
    shipped_wape = summary.loc[shipped, "wape"]
    figures = {
        "shipped_over_smoothing": (
            shipped_wape / summary.loc[SMOOTHING, "wape"],
            1.02,
            f"the shipped model ({shipped}) at most 2% worse than exponential smoothing",
        ),
        "forecaster_over_seasonal_naive": (
            summary.loc[FORECASTER, "wape"] / summary.loc[NAIVE, "wape"],
            0.90,
            "the forecaster at least 10% better than seasonal naive",
        ),
        "shipped_abs_bias": (abs(summary.loc[shipped, "bias"]), 0.05, "|bias| at most 5%"),
        "shipped_q90_coverage_miss": (
            abs(summary.loc[shipped, "coverage_q90"] - 0.9),
            0.03,
            "q90 coverage 90 +- 3 points",
        ),
    }
    if name == "m3-monthly":
        figures["shipped_smape_test_part"] = (
            summary.loc[shipped, "smape_test_part"],
            13.2,
            "M3 monthly sMAPE on the competition's test part (published Theta: 13.85)",
        )
        figures["forecaster_fit_forecast_s"] = (
            summary.loc[FORECASTER, "fit_forecast_s_test_part"],
            30.0,
            "the forecaster fits and forecasts all 1,428 series",
        )
    for figure, (value, at_most, description) in figures.items():
        report.add(f"{name} {figure}", "", value)
        report.target(f"{name} {figure}", at_most, description)
