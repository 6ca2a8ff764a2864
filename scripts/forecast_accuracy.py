"""Forecast accuracy on the platform's own data (the simulator's history landed, built by dbt, and
backtested: the forecaster beside the baselines, and with versus without the unified signals), or on real
public series (`--dataset`: the M3 and tourism competitions, benchmarks/forecast_datasets.py).

    .venv/bin/python scripts/forecast_accuracy.py                  # demo world, history from 2025-01-06
    .venv/bin/python scripts/forecast_accuracy.py --scale 3 --cutoffs 8 --json accuracy.json
    .venv/bin/python scripts/forecast_accuracy.py --dataset m3-monthly --cutoffs 3

The simulator's data runs through the real pipeline (the raw assets against the embedded simulator with its
clock frozen at --as-of, then `dbt build`), in a temporary data folder unless --data-dir is given. A real
data set is backtested on its training parts (--cutoffs origins, a year ahead), and every method is also
fitted on the whole training part and scored on the competition's own test part (sMAPE, as the competition
scored it). Prints the tables the docs show, as markdown.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path


def main() -> int:
    from benchmarks.forecast_datasets import DATASETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history-start", default="2025-01-06", type=date.fromisoformat)
    parser.add_argument("--as-of", default="2026-11-23T06:00:00+00:00")
    parser.add_argument("--scale", default=1.0, type=float, help="simulator world scale")
    parser.add_argument("--horizon", default=4, type=int, help="weeks ahead")
    parser.add_argument("--cutoffs", default=6, type=int, help="rolling origins")
    parser.add_argument("--data-dir", type=Path, help="reuse a built warehouse here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--dataset",
        default="simulator",
        choices=["simulator", *DATASETS],
        help="the simulator's world (default) or a real data set",
    )
    parser.add_argument("--series", type=int, help="a real data set's first N series only")
    args = parser.parse_args()
    if args.dataset != "simulator":
        return real_data_report(args)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="forecast-accuracy-")) / "data"
    # The asset graph (its first partition) and the embedded simulator read these when they are imported
    # and started: set them first.
    os.environ.update(
        {
            "UNIFIED_ASSETS_HISTORY_START": args.history_start.isoformat(),
            "UNIFIED_ASSETS_SIM_CLOCK": f"frozen:{args.as_of}",
            "UNIFIED_ASSETS_SIM_SCALE": str(args.scale),
        }
    )
    from unified_assets.lib.storage import PlatformStorage

    storage = PlatformStorage(data_dir=str(data_dir))
    started = time.monotonic()
    if not storage.warehouse_path.exists():
        build_warehouse(storage, args.history_start, datetime.fromisoformat(args.as_of))
    built = time.monotonic()

    from unified_assets.defs.forecast.demand_history import (
        DEMAND_SIGNALS,
        QUANTILES,
        read_weekly_demand,
        weekly_demand_panel,
    )
    from unified_assets.forecasting import DemandForecaster, backtest
    from unified_assets.forecasting.baselines import BASELINES, Theta
    from unified_assets.forecasting.selection import Blend

    history = read_weekly_demand(storage)
    methods = [
        *BASELINES,
        Theta,
        functools.partial(DemandForecaster, signals=()),
        DemandForecaster,
        Blend,
    ]
    report = backtest(
        weekly_demand_panel(history), args.horizon, args.cutoffs, QUANTILES, methods=methods
    )
    summary = report.summary()
    with_signals = summary.loc["demand_forecaster", "wape"]
    without = summary.loc["demand_forecaster_without_signals", "wape"]
    naive = summary.loc["seasonal_naive", "wape"]
    smoothing = summary.loc["exponential_smoothing", "wape"]
    by_step = wape_by_step(report.forecasts)

    print(
        f"\nWorld: demo x{args.scale}, history {args.history_start} to {history['period'].max():%Y-%m-%d}"
    )
    print(f"{history['series_id'].nunique()} SKUs, {history['period'].nunique()} complete weeks; ")
    print(
        f"horizon {args.horizon} weeks, {args.cutoffs} rolling origins; signals: {', '.join(DEMAND_SIGNALS)}"
    )
    print(f"data built in {built - started:.0f} s, backtest in {time.monotonic() - built:.0f} s\n")
    print(
        markdown(summary, ["wape", "bias", "mase", "coverage_q50", "coverage_q90", "coverage_q95"])
    )
    print(
        f"\nForecaster vs seasonal naive: {1 - with_signals / naive:+.1%} WAPE reduction; "
        f"vs exponential smoothing: {1 - with_signals / smoothing:+.1%}"
    )
    print("\nAblation: WAPE by weeks ahead, invoice history only vs with the unified signals\n")
    ablation = by_step.loc[["demand_forecaster_without_signals", "demand_forecaster"]]
    ablation.loc["reduction"] = 1 - ablation.iloc[1] / ablation.iloc[0]
    ablation["all"] = [without, with_signals, 1 - with_signals / without]
    print(markdown(ablation, list(ablation.columns)))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "summary": summary.round(4).reset_index().to_dict(orient="records"),
                    "ablation_by_step": ablation.round(4).reset_index().to_dict(orient="records"),
                    "settings": {k: str(v) for k, v in vars(args).items()},
                },
                indent=2,
            )
        )
    return 0


def real_data_report(args) -> int:
    """The backtest and the competition's test part for one real data set; see the module's docstring."""
    from benchmarks.forecast_datasets import DATASETS, evaluate

    evaluation = evaluate(DATASETS[args.dataset], args.cutoffs, limit=args.series)
    summary = evaluation.summary
    dataset = evaluation.dataset
    print(f"\n{dataset.description}: {evaluation.series:,} series")
    print(
        f"backtest: {args.cutoffs} rolling origins, {dataset.horizon} periods ahead, "
        f"{evaluation.backtest_s:.0f} s; competition test part: {evaluation.test_part_s:.0f} s; "
        f"the platform's selection ships {evaluation.shipped}\n"
    )
    columns = [
        "wape",
        "bias",
        "mase",
        "coverage_q90",
        "coverage_q95",
        "smape_test_part",
        "fit_forecast_s_test_part",
    ]
    print(markdown(summary, columns))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "summary": summary.round(4).reset_index().to_dict(orient="records"),
                    "shipped": evaluation.shipped,
                    "settings": {k: str(v) for k, v in vars(args).items()},
                },
                indent=2,
            )
        )
    return 0


def build_warehouse(storage, history_start: date, as_of: datetime) -> None:
    """Land the history into `storage` (a PlatformStorage) and build every dbt model there."""
    from dagster import DagsterInstance, materialize

    from unified_assets.defs.ingestion.assets import raw_assets
    from unified_assets.defs.transform.assets import dbt_models
    from unified_assets.lib.dbt_project import dbt_cli_resource
    from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi

    last_day = (as_of - timedelta(days=1)).date()
    with DagsterInstance.ephemeral() as instance:
        landed = materialize(
            raw_assets,
            instance=instance,
            resources={
                "storage": storage,
                "accounting_api": AccountingApi.from_environment(storage),
                "purchasing_api": PurchasingApi.from_environment(storage),
                "support_api": SupportApi.from_environment(storage),
            },
            tags={
                "dagster/asset_partition_range_start": history_start.isoformat(),
                "dagster/asset_partition_range_end": last_day.isoformat(),
            },
        )
        if not landed.success:
            raise SystemExit("landing the simulator's history failed; see the log above")
        resources = {"dbt": dbt_cli_resource(), "storage": storage}
        if not materialize([dbt_models], instance=instance, resources=resources).success:
            raise SystemExit("dbt build failed; see the log above")


def wape_by_step(forecasts):
    frame = forecasts.assign(
        step=forecasts.groupby(["method", "cutoff", "series_id"]).cumcount() + 1,
        error=(forecasts["y"] - forecasts["mean"]).abs(),
    )
    sums = frame.groupby(["method", "step"])[["error", "y"]].sum()
    return (sums["error"] / sums["y"]).unstack()


def markdown(frame, columns) -> str:
    lines = [
        "| " + " | ".join(["method", *map(str, columns)]) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in frame.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
