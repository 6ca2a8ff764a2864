"""The demand forecaster: one gradient-boosted model over all series, forecasting every step ahead directly.

Why this design: a global model learns from every SKU at once, so a short or sparse series borrows the
shape of the others; forecasting step h directly (h is a feature) avoids feeding forecasts back in as lags,
so errors do not compound and signals known at the origin can act on any step. Values are divided by each
series' recent level, so a SKU selling two a week and one selling thousands share one shape; targets by a
classical decomposition's forecast (that level carried along the series' trend, times its season index), so
the trees learn how far off that forecast is: a tree cannot extrapolate a trend, and on real monthly and
quarterly series (benchmarks/forecast_datasets.py) level-scaled targets left the forecaster 4-11% behind
exponential smoothing.
Rows are not weighted by volume: on the simulator's weekly demand that gave the same WAPE with a quarter of
the bias and a fifth of the fitting time (sklearn bins weighted features one percentile at a time).

Quantiles are conformal: a second fit on all but the most recent periods forecasts those periods, and the
errors it makes there (relative to the level, by steps ahead and by volume) are added to the point forecast.
The share of actuals at or below each quantile is thereby what it says on unseen periods, not in-sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from unified_assets.forecasting.features import FeatureBuilder, Layout

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor
from unified_assets.forecasting.metrics import POINT, quantile_column
from unified_assets.forecasting.panel import Panel, PanelError, prepare_panel

REGRESSOR_DEFAULTS = {
    "learning_rate": 0.05,
    "max_iter": 150,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
}
MIN_CALIBRATION_ROWS = 200
# How far the held-out periods may scale the point forecast (total actual / total forecast there).
CORRECTION_BOUNDS = (0.8, 1.25)
STEP_BUCKETS = 4
LEVEL_BUCKETS = 3


@dataclass(frozen=True)
class Rows:
    """Training or calibration rows: which series, from which origin, how many steps ahead."""

    series: np.ndarray
    origin: np.ndarray
    steps: np.ndarray

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.series[mask], self.origin[mask], self.steps[mask])

    def __len__(self) -> int:
        return len(self.series)


@dataclass(frozen=True)
class Fitted:
    """A fitted regressor and the feature columns it was given (a column with no value in any training
    row, such as last year's value on a history shorter than a year, is left out)."""

    regressor: HistGradientBoostingRegressor
    columns: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.regressor.predict(features[:, self.columns])


class DemandForecaster:
    """Fit on a long history (series_id, period, y, optional signal columns); predict `horizon` periods.

    `signals=None` uses every signal column of the history, `()` the target's own history only. Signal
    families the panel declares `known_ahead` are also read for the period each forecast is for.
    """

    name = "demand_forecaster"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = (0.5, 0.9, 0.95),
        signals: tuple[str, ...] | None = None,
        loss: str = "poisson",
        regressor_params: dict | None = None,
        max_training_rows: int = 400_000,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if 0.5 not in quantiles:
            raise ValueError("quantiles must include 0.5: it is the point forecast")
        self.horizon = horizon
        self.quantiles = tuple(sorted(quantiles))
        self.signals = signals
        self.loss = loss
        self.regressor_params = {**REGRESSOR_DEFAULTS, **(regressor_params or {})}
        self.max_training_rows = max_training_rows
        self.random_state = random_state
        # OpenMP threads of the gradient boosting (None: one per core). One by default: a fit of the
        # platform's panels is no faster on two cores, and with another busy process beside it, threads
        # that spin while waiting for each other made it 2x slower with one such process and over 20x with
        # two (docs/benchmarks.md, *Hot spots*). Large panels on an idle machine gain from more.
        self.n_threads = n_threads
        if signals == ():
            self.name = "demand_forecaster_without_signals"

    # ------------------------------------------------------------------------------------ public

    def fit(self, history: pd.DataFrame | Panel) -> DemandForecaster:
        with self._threads():
            return self._fit(history)

    def predict(self, history: pd.DataFrame | Panel | None = None) -> pd.DataFrame:
        """series_id, period, the mean and one column per quantile for the `horizon` periods after the
        history: the one fitted on, or a newer one (the fitted model scoring the latest data without being
        refitted)."""
        with self._threads():
            return self._predict(history)

    def _fit(self, history: pd.DataFrame | Panel) -> DemandForecaster:
        panel = history if isinstance(history, Panel) else prepare_panel(history)
        signals = panel.signals if self.signals is None else self.signals
        unknown = sorted(set(signals) - set(panel.signals))
        if unknown:
            raise PanelError(f"signal column(s) {unknown} are not in the history")
        self.panel_ = panel
        self.used_signals_ = tuple(signals)
        self.known_ahead_ = {
            family: columns
            for family, columns in panel.known_ahead.items()
            if set(columns) <= set(signals)
        }
        self.builder_ = self._builder(panel)
        rows = self._training_rows()
        if len(rows) == 0:
            raise PanelError("no series has a period after its first one: nothing to learn from")
        self.offsets_, self.calibration_ = self._calibrate(rows)
        self.model_ = self._fit_model(rows)
        self.recent_rows_ = rows.take(rows.origin >= rows.origin.max() - self.horizon)
        return self

    def _predict(self, history: pd.DataFrame | Panel | None) -> pd.DataFrame:
        self._fitted()
        panel, builder = self._scoring_inputs(history)
        last = len(builder.layout.periods) - 1
        count = len(builder.layout.series)
        rows = Rows(
            np.repeat(np.arange(count), self.horizon),
            np.full(count * self.horizon, last),
            np.tile(np.arange(1, self.horizon + 1), count),
        )
        mean, quantiles = self._forecast(builder, rows, self.model_)
        future = panel.periods_after(panel.last_period, self.horizon)
        frame = pd.DataFrame(
            {"series_id": builder.layout.series[rows.series], "period": future[rows.steps - 1]}
        )
        frame[POINT] = mean
        for q, values in quantiles.items():
            frame[quantile_column(q)] = values
        return frame

    @contextmanager
    def _threads(self) -> Iterator[None]:
        # Loads the OpenMP runtime the boosting is compiled against: a limit reaches only libraries
        # already loaded.
        import sklearn.ensemble  # noqa: F401
        from threadpoolctl import threadpool_limits

        limit = getattr(self, "n_threads", 1)  # models registered before the setting existed
        if limit is None:
            yield
            return
        with threadpool_limits(limits=limit, user_api="openmp"):
            yield

    @property
    def feature_names(self) -> list[str]:
        return self._fitted().names

    def feature_importance(self, sample: int = 5_000) -> pd.Series:
        """Permutation importance (increase in mean absolute error, relative to the level) of each
        feature on the most recent training rows, largest first."""
        from sklearn.inspection import permutation_importance

        builder = self._fitted()
        rows = self.recent_rows_
        if len(rows) > sample:
            rows = rows.take(np.arange(len(rows)) >= len(rows) - sample)
        features = builder.rows(rows.series, rows.origin, rows.steps)[:, self.model_.columns]
        target = builder.layout.y[rows.series, rows.origin + rows.steps] / builder.scale_at(
            rows.series, rows.origin, rows.steps
        )
        with self._threads():
            result = permutation_importance(
                self.model_.regressor,
                features,
                target,
                scoring="neg_mean_absolute_error",
                n_repeats=3,
                random_state=self.random_state,
            )
        names = np.array(builder.names)[self.model_.columns]
        return pd.Series(result.importances_mean, index=names).sort_values(ascending=False)

    def _scoring_inputs(self, history) -> tuple[Panel, FeatureBuilder]:
        if history is None:
            return self.panel_, self.builder_
        panel = history if isinstance(history, Panel) else prepare_panel(history, self.known_ahead_)
        if panel.freq != self.panel_.freq:
            raise PanelError(
                f"the model was fitted on {self.panel_.freq} periods; this history is {panel.freq}"
            )
        missing = sorted(set(self.used_signals_) - set(panel.signals))
        if missing:
            raise PanelError(
                f"the model needs signal column(s) {missing}, absent from this history"
            )
        return panel, self._builder(panel)

    def _builder(self, panel: Panel) -> FeatureBuilder:
        layout = Layout.of(panel, self.used_signals_)
        return FeatureBuilder(layout, panel.freq, panel.season_length, self.known_ahead_)

    # ---------------------------------------------------------------------------------- training

    def _training_rows(self) -> Rows:
        """Every (series, origin, step) whose origin and target are both observed; a uniform random
        sample of `max_training_rows` of them when there are more."""
        y = self.builder_.layout.y
        observed = ~np.isnan(y)
        last = y.shape[1] - 1
        parts = []
        for step in range(1, self.horizon + 1):
            series, origin = np.nonzero(observed[:, : last + 1 - step])
            parts.append(Rows(series, origin, np.full(len(series), step)))
        rows = Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Rows.__annotations__))
        if len(rows) > self.max_training_rows:
            chosen = np.random.default_rng(self.random_state).choice(
                len(rows), self.max_training_rows, replace=False
            )
            rows = rows.take(np.sort(chosen))
        return rows

    def _fit_model(self, rows: Rows) -> Fitted:
        builder = self.builder_
        scale = builder.scale_at(rows.series, rows.origin, rows.steps)
        target = builder.layout.y[rows.series, rows.origin + rows.steps] / scale
        features = builder.rows(rows.series, rows.origin, rows.steps)
        columns = ~np.isnan(features).all(axis=0)
        # Imported here: every Dagster step process loads the definitions, few of them fit a model.
        from sklearn.ensemble import HistGradientBoostingRegressor

        regressor = HistGradientBoostingRegressor(
            loss=self.loss, random_state=self.random_state, **self.regressor_params
        )
        regressor.fit(features[:, columns], target)
        return Fitted(regressor, columns)

    def _point(self, builder: FeatureBuilder, rows: Rows, model: Fitted) -> np.ndarray:
        """The model's mean forecast in units, before the calibration's level correction."""
        scaled = model.predict(builder.rows(rows.series, rows.origin, rows.steps))
        return np.maximum(scaled, 0.0) * builder.scale_at(rows.series, rows.origin, rows.steps)

    # ------------------------------------------------------------------------------- calibration

    def _calibrate(self, rows: Rows) -> tuple[dict, str]:
        """Offsets per quantile, step bucket and level bucket, from errors on periods the calibration
        fit never saw; in-sample errors of the full fit when the history is too short to hold any out."""
        last = self.builder_.layout.y.shape[1] - 1
        first_held = last - 2 * self.horizon + 1
        calibration = rows.take(rows.origin >= first_held)
        before = rows.take(rows.origin + rows.steps <= first_held)
        if len(calibration) >= MIN_CALIBRATION_ROWS and len(before) >= MIN_CALIBRATION_ROWS:
            return self._offsets(calibration, self._fit_model(before)), "held-out"
        return self._offsets(rows, self._fit_model(rows)), "in-sample"

    def _offsets(self, rows: Rows, model: Fitted) -> dict:
        builder = self.builder_
        level = builder.level_at(rows.series, rows.origin)
        actual = builder.layout.y[rows.series, rows.origin + rows.steps]
        point = self._point(builder, rows, model)
        self.correction_ = (
            float(np.clip(actual.sum() / point.sum(), *CORRECTION_BOUNDS))
            if point.sum() > 0
            else 1.0
        )
        relative_error = (actual - point * self.correction_) / level
        self.level_edges_ = np.quantile(np.log(level), np.linspace(0, 1, LEVEL_BUCKETS + 1)[1:-1])
        buckets = self._buckets(builder, rows)
        offsets = {}
        for q in self.quantiles:
            pooled = np.quantile(relative_error, q)
            by_bucket = np.full(STEP_BUCKETS * LEVEL_BUCKETS, pooled)
            for bucket in np.unique(buckets):
                errors = relative_error[buckets == bucket]
                if len(errors) >= MIN_CALIBRATION_ROWS // 4:
                    by_bucket[bucket] = np.quantile(errors, q)
            offsets[q] = by_bucket
        return offsets

    def _buckets(self, builder: FeatureBuilder, rows: Rows) -> np.ndarray:
        step_bucket = np.minimum((rows.steps - 1) * STEP_BUCKETS // self.horizon, STEP_BUCKETS - 1)
        level = builder.level_at(rows.series, rows.origin)
        level_bucket = np.searchsorted(self.level_edges_, np.log(level))
        return step_bucket * LEVEL_BUCKETS + level_bucket

    def _forecast(
        self, builder: FeatureBuilder, rows: Rows, model: Fitted
    ) -> tuple[np.ndarray, dict[float, np.ndarray]]:
        """The corrected mean and the quantiles around it."""
        point = self._point(builder, rows, model) * self.correction_
        level = builder.level_at(rows.series, rows.origin)
        buckets = self._buckets(builder, rows)
        values = {
            q: np.maximum(point + self.offsets_[q][buckets] * level, 0.0) for q in self.quantiles
        }
        for lower, upper in zip(self.quantiles, self.quantiles[1:], strict=False):
            values[upper] = np.maximum(values[upper], values[lower])  # quantiles never cross
        return point, values

    def _fitted(self) -> FeatureBuilder:
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{self.name}: fit before predict")
        return self.builder_
