"""Features of a series as of a forecast origin, for a direct multi-horizon model.

Everything a row knows comes from periods at or before its origin: the target's own recent values, its
level and intermittency, the same season's values from earlier cycles, the signals' recent values, and the
calendar of the period being forecast (known in advance). Values are divided by the series' recent level,
so one model serves a SKU selling thousands a week and one selling two.

The panel is held as matrices (series x period, NaN before a series starts) so every feature is computed
for every origin at once; rows are then gathered for the (series, origin, steps ahead) triples wanted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from unified_assets.forecasting.panel import Panel

# Periods over which a series' level (the divisor of every value feature) is averaged.
LEVEL_WINDOWS = {"D": 28, "B": 20, "W": 13, "MS": 12, "ME": 12, "M": 12, "QS": 8, "QE": 8, "Q": 8}
# How far from the level the decomposition's forecast may put a target's scale (`scale_at`).
DECOMPOSITION_BOUNDS = (0.2, 5.0)
SIGNAL_BLOCKS = (
    4  # a signal's recent totals: over the last 1..4 blocks (weeks of days, else periods)
)


@dataclass(frozen=True)
class Layout:
    """The panel as matrices over one period grid."""

    series: np.ndarray  # series ids, in row order
    periods: pd.DatetimeIndex  # column order
    y: np.ndarray  # series x period, NaN before the series starts
    signals: dict[str, np.ndarray]  # same shape as y

    @classmethod
    def of(cls, panel: Panel, signals: tuple[str, ...]) -> Layout:
        frame = panel.frame
        periods = pd.date_range(frame["period"].min(), frame["period"].max(), freq=panel.freq)
        series = np.sort(frame["series_id"].unique())

        def matrix(column: str) -> np.ndarray:
            wide = frame.pivot(index="series_id", columns="period", values=column)
            return wide.reindex(index=series, columns=periods).to_numpy(dtype=np.float64)

        return cls(series, periods, matrix("y"), {name: matrix(name) for name in signals})


class FeatureBuilder:
    """Feature matrices for every (series, origin) of a layout; rows for any steps ahead on request."""

    def __init__(
        self,
        layout: Layout,
        freq: str,
        season_length: int,
        known_ahead: Mapping[str, tuple[str, ...]] | None = None,
    ):
        self.layout = layout
        self.known_ahead = dict(known_ahead or {})
        self.freq = freq
        self.season = season_length
        base = freq.split("-")[0]
        self.level_window = LEVEL_WINDOWS.get(base, 12)
        self.lags = min(season_length, 12) if season_length > 1 else 6
        self.block = season_length if 1 < season_length <= 7 else 1
        self.level = _level(layout.y, self.level_window)
        # The series' mean over its last full cycle (over the level window when it has no season): its
        # level with the season averaged out, from which its trend and season shape are read. NaN until
        # the series has a whole cycle.
        self.cycle = season_length if season_length > 1 else self.level_window
        self.deseasonalised = np.where(
            np.isnan(_shift(layout.y, self.cycle - 1)), np.nan, _rolling_mean(layout.y, self.cycle)
        )
        self.trend = self._trend()
        self.origin_features = self._origin_features()

    @property
    def names(self) -> list[str]:
        return [
            *self.origin_features,
            "steps_ahead",
            "same_phase_last_cycle",
            "same_phase_mean",
            "trend_at_target",
            "season_index",
            "decomposition_forecast",
            *self._calendar_names(),
            *(
                f"{family}_{when}"
                for family in self.known_ahead
                for when in ("at_target", "before_target", "through_target")
            ),
        ]

    def rows(
        self, series_index: np.ndarray, origin_index: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """Feature rows for forecasting period origin + steps of each series from that origin."""
        target_index = origin_index + steps
        columns = [values[series_index, origin_index] for values in self.origin_features.values()]
        columns.append(steps.astype(np.float64))
        columns.extend(self._same_phase(series_index, origin_index, steps))
        columns.extend(self._decomposition(series_index, origin_index, steps))
        columns.extend(self._calendar(target_index))
        for family in self.known_ahead.values():
            columns.extend(self._known_ahead(family, series_index, origin_index, steps))
        return np.column_stack(columns).astype(np.float32)

    def level_at(self, series_index: np.ndarray, origin_index: np.ndarray) -> np.ndarray:
        return self.level[series_index, origin_index]

    def scale_at(
        self, series_index: np.ndarray, origin_index: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """What a target is divided by: the decomposition's forecast for it in units (the level times
        the trend carried to the target and its season index), kept within DECOMPOSITION_BOUNDS of the
        level so a noisy cycle cannot make it absurd. The model then learns how far off that forecast
        is, which trees can; they cannot extrapolate a trend or multiply a level by a season."""
        relative = self._decomposition(series_index, origin_index, steps)[2]
        bounded = np.clip(np.nan_to_num(relative, nan=1.0), *DECOMPOSITION_BOUNDS)
        return self.level_at(series_index, origin_index) * bounded

    # ------------------------------------------------------------------------------ per origin

    def _origin_features(self) -> dict[str, np.ndarray]:
        """Stored as float32, the precision rows are handed to the model in: each is computed in float64
        and narrowed at once, so a large panel never holds every feature at double width."""
        return {name: values.astype(np.float32) for name, values in self._origin_feature_values()}

    def _origin_feature_values(self) -> Iterator[tuple[str, np.ndarray]]:
        y, level = self.layout.y, self.level
        yield "level_log", np.log1p(level)
        zero = np.where(np.isnan(y), np.nan, (y == 0).astype(float))
        yield "zero_share", _rolling_mean(zero, self.level_window)
        yield "age", np.cumsum(~np.isnan(y), axis=1).astype(np.float64)
        for lag in range(self.lags):
            yield f"lag_{lag}", _shift(y, lag) / level
        for window in sorted({3, max(self.season, 4), self.level_window * 2}):
            yield f"mean_{window}", _rolling_mean(y, window) / level
        yield "trend", self.trend / level
        for name, values in self.layout.signals.items():
            usual = _level(values, self.level_window * 2)
            for lag in range(self.lags):
                yield f"{name}_lag_{lag}", _shift(values, lag) / level
            for blocks in range(1, SIGNAL_BLOCKS + 1):
                total = _rolling_sum(values, self.block * blocks) / (self.block * blocks)
                yield f"{name}_last_{blocks * self.block}", total / level
                yield f"{name}_last_{blocks * self.block}_vs_usual", total / usual

    # ----------------------------------------------------------------------- per target period

    def _same_phase(self, series_index, origin_index, steps) -> list[np.ndarray]:
        """The target's season position in earlier cycles: the latest such value and the mean of up to
        four, both relative to the level. NaN when the history is shorter than a cycle."""
        if self.season < 2:
            nothing = np.full(len(steps), np.nan)
            return [nothing, nothing]
        y = self.layout.y
        cycles_back = np.ceil(steps / self.season).astype(np.int64)
        level = self.level[series_index, origin_index]
        values = []
        for extra in range(4):
            index = origin_index + steps - self.season * (cycles_back + extra)
            inside = index >= 0
            value = np.full(len(steps), np.nan)
            value[inside] = y[series_index[inside], index[inside]]
            values.append(value / level)
        stacked = np.column_stack(values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN row: no earlier cycle
            mean = np.nanmean(stacked, axis=1)
        return [values[0], mean]

    def _trend(self) -> np.ndarray:
        """Per period, how much the deseasonalised level rose per period over the last two cycles (over
        the last one while the series has fewer than three; NaN before it has two). One cycle's change
        of a quarterly series is four quarters' noise: over two, tourism's quarterly WAPE fell 2%."""

        def rise_over(cycles: int) -> np.ndarray:
            periods = self.cycle * cycles
            return (self.deseasonalised - _shift(self.deseasonalised, periods)) / periods

        two = rise_over(2)
        return np.where(np.isnan(two), rise_over(1), two)

    def _decomposition(self, series_index, origin_index, steps) -> list[np.ndarray]:
        """A classical decomposition's forecast, relative to the level: the deseasonalised level carried
        along its trend (`_trend`) to the target period, the target's season index (its phase's value
        in up to four earlier cycles over the deseasonalised level around it; NaN without a season or an
        earlier cycle), and their product. A series younger than a cycle is carried at its level."""
        level = self.level[series_index, origin_index]
        deseasonalised = self.deseasonalised[series_index, origin_index]
        trend = np.nan_to_num(self.trend[series_index, origin_index])
        centre = (self.cycle - 1) / 2  # the cycle's mean sits at its middle period
        trend_at_target = np.where(
            np.isnan(deseasonalised), 1.0, (deseasonalised + trend * (steps + centre)) / level
        )
        index = np.full(len(steps), np.nan)
        if self.season > 1:
            cycles_back = np.ceil(steps / self.season).astype(np.int64)
            ratios = []
            for extra in range(4):
                phase = origin_index + steps - self.season * (cycles_back + extra)
                inside = phase >= self.season - 1
                around = np.minimum(phase + self.season // 2, origin_index)
                ratio = np.full(len(steps), np.nan)
                with np.errstate(invalid="ignore"):  # 0 / 0: a cycle without a sale
                    ratio[inside] = (
                        self.layout.y[series_index[inside], phase[inside]]
                        / self.deseasonalised[series_index[inside], around[inside]]
                    )
                ratios.append(ratio)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN row: no earlier cycle
                index = np.nanmean(np.column_stack(ratios), axis=1)
        return [trend_at_target, index, trend_at_target * np.where(np.isnan(index), 1.0, index)]

    def _known_ahead(self, family, series_index, origin_index, steps) -> list[np.ndarray]:
        """What the origin already knows about the target period, the one before it (late arrivals spill
        over) and every period up to it, relative to the level; NaN beyond what the family covers."""
        count, row = len(family), np.arange(len(steps))
        known = [self.layout.signals[column][series_index, origin_index] for column in family]
        # Column k: what is due k periods after the origin; column 0 (nothing) pads the cumulative sum.
        due = (
            np.column_stack([np.zeros(len(steps)), *known])
            / self.level_at(series_index, origin_index)[:, None]
        )

        def due_at(step: np.ndarray) -> np.ndarray:
            return np.where(
                (step >= 1) & (step <= count), due[row, np.clip(step, 0, count)], np.nan
            )

        through = np.cumsum(due, axis=1)[row, np.clip(steps, 0, count)]
        return [due_at(steps), due_at(steps - 1), np.where(steps <= count, through, np.nan)]

    def _calendar_names(self) -> list[str]:
        names = ["target_day_of_week", "target_week_of_year", "target_month"]
        if self._daily:
            names += ["target_day_of_month", "target_days_to_month_end", "target_day_of_quarter"]
        return names

    @property
    def _daily(self) -> bool:
        """Daily series also get where the day falls in its month and quarter: work that peaks at
        month-end or at a quarter's close comes back on those days, not on a weekday or a week number."""
        return self.freq.split("-")[0] in ("D", "B")

    def _calendar(self, target_index: np.ndarray) -> list[np.ndarray]:
        periods = self.layout.periods
        horizon_end = periods[-1]
        extended = pd.date_range(
            periods[0], periods=len(periods) + int(target_index.max(initial=0)) + 1, freq=self.freq
        )
        assert extended[len(periods) - 1] == horizon_end
        targets = extended[target_index]
        columns = [
            targets.day_of_week.to_numpy(dtype=np.float64),
            targets.isocalendar().week.to_numpy(dtype=np.float64),
            targets.month.to_numpy(dtype=np.float64),
        ]
        if self._daily:
            quarter_start = targets.to_period("Q").start_time
            columns += [
                targets.day.to_numpy(dtype=np.float64),
                (targets.days_in_month - targets.day).to_numpy(dtype=np.float64),
                ((targets - quarter_start).days + 1).to_numpy(dtype=np.float64),
            ]
        return columns


def _level(y: np.ndarray, window: int) -> np.ndarray:
    """A series' recent mean; its mean since it started when the recent window was all zeros, and a
    hundredth of the panel's typical nonzero value when that was too (so ratios stay finite)."""
    recent = _rolling_mean(y, window)
    since_start = pd.DataFrame(y.T).expanding().mean().to_numpy().T
    positive = y[y > 0]
    floor = 0.01 * float(np.median(positive)) if len(positive) else 1.0
    return np.maximum(np.where(recent > 0, recent, since_start), floor)


def _shift(values: np.ndarray, periods: int) -> np.ndarray:
    if periods == 0:
        return values
    shifted = np.full_like(values, np.nan)
    shifted[:, periods:] = values[:, :-periods]
    return shifted


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last `window` periods up to and including each one, of those observed."""
    return pd.DataFrame(values.T).rolling(window, min_periods=1).mean().to_numpy().T


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    return pd.DataFrame(values.T).rolling(window, min_periods=1).sum().to_numpy().T
