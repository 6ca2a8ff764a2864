"""A synthetic history of records a day whose peaks are known: what the capacity forecast must find."""

import numpy as np
import pandas as pd

WEEKDAY = np.array([1.2, 1.1, 1.0, 1.0, 0.9, 0.4, 0.3])  # Monday..Sunday
# source: (records on a usual weekday, how many times that on a month's last day)
MONTH_END_PEAKS = {"purchasing": (40, 4.0), "accounting": (60, 3.0), "support": (30, 1.0)}


def records_with_month_end_peaks(days: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    """source, day, records: Poisson around a weekday pattern, times each source's month-end factor,
    each day read two hours after it ended (as the daily pipeline reads it)."""
    rng = np.random.default_rng(seed)
    frames = []
    for source, (level, month_end) in MONTH_END_PEAKS.items():
        expected = level * WEEKDAY[days.day_of_week] * np.where(days.is_month_end, month_end, 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "source": source,
                    "day": days,
                    "records": rng.poisson(expected),
                    "extracted_at": (days + pd.Timedelta(hours=26)).tz_localize("UTC"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
