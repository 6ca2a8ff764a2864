"""The few settings that shape the definitions themselves.

Every environment variable the platform reads is listed in `.env.example`. This module reads only the ones
the asset graph is built from (the first day of history, the daily pipeline's time): they must be known
when definitions load, before any run starts. Where the platform keeps its data is the `storage` resource's
(`unified_assets.lib.storage`); connection settings and secrets are resolved by Dagster's `EnvVar` in the
resources, never here.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

HISTORY_START_VAR = "UNIFIED_ASSETS_HISTORY_START"
# Two full years before this release's date (a Monday), so the forecast's backtest sees two seasons and
# seasonal naive means something; a world of that length takes under a second to generate.
DEFAULT_HISTORY_START = date(2024, 11, 25)
DAILY_PIPELINE_CRON_VAR = "UNIFIED_ASSETS_DAILY_PIPELINE_CRON"
DEFAULT_DAILY_PIPELINE_CRON = "0 2 * * *"  # 02:00 UTC


class SettingError(ValueError):
    """A configuration value the user set is unusable; the message names the setting."""


def history_start() -> date:
    """The first day of source history: the first partition of every raw asset."""
    raw = os.environ.get(HISTORY_START_VAR, "").strip()
    if not raw:
        return DEFAULT_HISTORY_START
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingError(
            f"{HISTORY_START_VAR}={raw!r} is not a date; use the ISO form YYYY-MM-DD, e.g. 2026-01-01"
        ) from None


def daily_pipeline_cron() -> str:
    """When the daily pipeline runs, as a cron expression in UTC (Dagster validates it with the schedule)."""
    return os.environ.get(DAILY_PIPELINE_CRON_VAR, "").strip() or DEFAULT_DAILY_PIPELINE_CRON
