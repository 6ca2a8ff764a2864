"""Demand forecasting as a library: a long panel in, forecasts and honest backtests out. No Dagster here;
the `ml` assets call it, and it runs as well on any retail data set in the same shape.

    from unified_assets.forecasting import backtest
    report = backtest(history, horizon=12, cutoffs=3)  # each method on the same rolling origins
    print(report.table())
"""

from unified_assets.forecasting.backtest import BacktestReport, backtest
from unified_assets.forecasting.panel import Panel, PanelError, prepare_panel

__all__ = ["BacktestReport", "Panel", "PanelError", "backtest", "prepare_panel"]
