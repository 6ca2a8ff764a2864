"""Time and peak memory of fitting and forecasting a large synthetic panel: how the forecaster scales to
data sets bigger than the demo world (the README's "Size" line).

    .venv/bin/python scripts/forecaster_size.py 20000 260 W-MON    # series, periods, pandas frequency
    .venv/bin/python scripts/forecaster_size.py 2000 1000 D
    .venv/bin/python scripts/forecaster_size.py 64 104 W-MON --threads all   # one OpenMP thread per core

Peak memory is the process's maximum resident set size, so run one size per invocation.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("series", type=int)
    parser.add_argument("periods", type=int)
    parser.add_argument("freq", help="pandas frequency, e.g. W-MON or D")
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument(
        "--threads", default="1", help="OpenMP threads of the fit: a number, or 'all' (default 1)"
    )
    args = parser.parse_args()

    from unified_assets.forecasting import DemandForecaster

    rng = np.random.default_rng(0)
    periods = pd.date_range("2020-01-06", periods=args.periods, freq=args.freq)
    level = rng.gamma(0.7, 5.0, args.series)  # a few large series, many small and intermittent ones
    season = 1 + 0.3 * np.sin(np.arange(args.periods) / 8)
    history = pd.DataFrame(
        {
            "series_id": np.repeat(np.arange(args.series), args.periods),
            "period": np.tile(periods, args.series),
            "y": rng.poisson(level[:, None] * season[None, :]).ravel(),
        }
    )
    started = time.monotonic()
    threads = None if args.threads == "all" else int(args.threads)
    forecaster = DemandForecaster(horizon=args.horizon, n_threads=threads)
    forecast = forecaster.fit(history).predict()
    elapsed = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print(
        f"{args.series} series x {args.periods} {args.freq} ({len(history):,} rows): fit and forecast "
        f"{elapsed:.1f} s in {args.threads} OpenMP thread(s), peak memory {peak_mb:,.0f} MB, "
        f"{len(forecast):,} forecast rows"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
