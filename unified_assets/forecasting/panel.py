"""The long-format panel every forecaster here reads: one row per series and period.

A panel is validated once, its frequency inferred from the periods, and made regular: every series runs
from its first period to the panel's last with explicit zeros where nothing happened (a missing day of sales
is a zero, not a gap), and signal columns are kept as they are.

Some signals already know part of the future at each period: an order book says, as of this week, how much
is due one, two, three weeks ahead. Such a family of columns (the k-th holding what is known about period
t + k in row t) is declared with `known_ahead`, so a model can read the column that matches the period it
forecasts instead of learning which one that is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

REQUIRED = ("series_id", "period", "y")

# Seasonal cycle per pandas frequency: a week of days, a year of weeks, months or quarters.
SEASON_LENGTHS = {"D": 7, "B": 5, "W": 52, "MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4}


class PanelError(ValueError):
    """The history handed to a forecaster cannot be used as it is; the message says why."""


@dataclass(frozen=True)
class Panel:
    frame: (
        pd.DataFrame
    )  # series_id, period, y, signals...; regular, sorted by series_id then period
    freq: str
    signals: tuple[str, ...]
    # family name -> signal columns; the k-th (from 1) is known in row t about period t + k
    known_ahead: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def season_length(self) -> int:
        return SEASON_LENGTHS.get(self.freq.split("-")[0], 1)

    @property
    def last_period(self) -> pd.Timestamp:
        return self.frame["period"].max()

    def periods_after(self, origin: pd.Timestamp, count: int) -> pd.DatetimeIndex:
        return pd.date_range(origin, periods=count + 1, freq=self.freq)[1:]

    def fingerprint(self) -> str:
        """A hash of every value in the panel: two models trained on the same data share it."""
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes() + self.freq.encode()).hexdigest()[:16]

    def until(self, origin: pd.Timestamp) -> Panel:
        """The panel as it was known at `origin`: nothing after it, no series that had not started."""
        return Panel(
            self.frame[self.frame["period"] <= origin], self.freq, self.signals, self.known_ahead
        )


def prepare_panel(
    history: pd.DataFrame, known_ahead: Mapping[str, Sequence[str]] | None = None
) -> Panel:
    """A validated, regular panel; `known_ahead` names the signal families that look ahead (see above)."""
    missing = [column for column in REQUIRED if column not in history.columns]
    if missing:
        raise PanelError(
            f"history lacks column(s) {missing}; expected {list(REQUIRED)} plus signals"
        )
    frame = history.copy()
    frame["period"] = pd.to_datetime(frame["period"])
    frame["y"] = pd.to_numeric(frame["y"], errors="raise").astype(float)
    if frame["y"].isna().any():
        raise PanelError(f"y is missing in {int(frame['y'].isna().sum())} rows")
    if frame.duplicated(["series_id", "period"]).any():
        raise PanelError("more than one row for a series and period; aggregate first")
    freq = infer_frequency(frame["period"])
    signals = tuple(c for c in frame.columns if c not in REQUIRED)
    families = {name: tuple(columns) for name, columns in (known_ahead or {}).items()}
    for name, columns in families.items():
        absent = [column for column in columns if column not in signals]
        if not columns or absent:
            raise PanelError(
                f"known-ahead family {name!r} needs signal column(s) {absent or '(none given)'}"
            )
    return Panel(regularize(frame, freq, signals), freq, signals, families)


def infer_frequency(periods: pd.Series) -> str:
    distinct = pd.DatetimeIndex(periods.drop_duplicates().sort_values())
    if len(distinct) < 3:
        raise PanelError("at least three distinct periods are needed to tell the frequency")
    inferred = pd.DatetimeIndex(distinct, freq="infer").freq if len(distinct) >= 3 else None
    freq = inferred.freqstr if inferred is not None else None
    if freq is None:  # gaps: take the most common step and check every period sits on it
        step = distinct.to_series().diff().mode().iloc[0]
        candidates = {
            pd.Timedelta(days=1): "D",
            pd.Timedelta(weeks=1): f"W-{distinct[0]:%a}".upper(),
        }
        freq = candidates.get(step)
        if freq is None and all(p.day == 1 for p in distinct):
            freq = "MS"
        if freq is None:
            raise PanelError(f"cannot infer a regular frequency from periods stepping by {step}")
    grid = pd.date_range(distinct[0], distinct[-1], freq=freq)
    if not distinct.isin(grid).all():
        raise PanelError(f"periods do not all fall on a {freq} grid")
    return freq


def regularize(frame: pd.DataFrame, freq: str, signals: tuple[str, ...]) -> pd.DataFrame:
    end = frame["period"].max()
    pieces = []
    for series_id, group in frame.groupby("series_id", sort=True):
        index = pd.date_range(group["period"].min(), end, freq=freq, name="period")
        full = group.set_index("period").reindex(index)
        full["series_id"] = series_id
        full["y"] = full["y"].fillna(0.0)
        for signal in signals:
            full[signal] = pd.to_numeric(full[signal], errors="coerce").fillna(0.0)
        pieces.append(full.reset_index())
    columns = ["series_id", "period", "y", *signals]
    return pd.concat(pieces, ignore_index=True)[columns]
