"""Demand forecasting as a library: a long panel in, forecasts and honest backtests out. No Dagster here;
the `ml` assets call it, and it runs as well on any retail data set in the same shape.

    from unified_assets.forecasting import DemandForecaster, backtest
    forecast = DemandForecaster(horizon=12).fit(history).predict()  # series_id, period, mean, q50, q90, q95
    report = backtest(history, horizon=12, cutoffs=3)  # the model and each baseline, same origins
    print(report.table())
"""

from unified_assets.forecasting.backtest import BacktestReport, backtest
from unified_assets.forecasting.model import DemandForecaster
from unified_assets.forecasting.panel import Panel, PanelError, prepare_panel

__all__ = ["BacktestReport", "DemandForecaster", "Panel", "PanelError", "backtest", "prepare_panel"]
