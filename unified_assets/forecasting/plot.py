"""Forecast-versus-actual charts as PNG bytes, small enough to embed in an asset's markdown metadata."""

from __future__ import annotations

import io

import pandas as pd


def forecast_vs_actual_png(
    actual: pd.Series, forecast: pd.DataFrame, title: str, upper: str = "q90", unit: str = "units"
) -> bytes:
    """`actual`: totals by period. `forecast`: totals by period with `mean` and an `upper` quantile column
    (and optionally `origin`, one line per forecast origin)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 3.2), dpi=90)
    try:
        axes.plot(actual.index, actual.to_numpy(), color="#333333", linewidth=1.4, label="actual")
        groups = forecast.groupby("origin") if "origin" in forecast else [(None, forecast)]
        for index, (_, window) in enumerate(groups):
            axes.plot(
                window["period"],
                window["mean"],
                color="#1f77b4",
                linewidth=1.6,
                label="forecast (mean)" if index == 0 else None,
            )
            axes.fill_between(
                window["period"],
                window["mean"],
                window[upper],
                color="#1f77b4",
                alpha=0.18,
                label=f"up to {upper}" if index == 0 else None,
            )
        axes.set_title(title, fontsize=10)
        axes.set_ylabel(unit)
        axes.legend(fontsize=8, loc="upper left")
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        pyplot.close(figure)
