"""Where the platform keeps its files, and the few settings that are not secrets.

Every environment variable the platform reads is listed in `.env.example`. This module reads only the ones
that shape the definitions themselves (the data folder, the first day of history, the daily pipeline's
time): they must be known when definitions load, before any run starts. Connection settings and secrets are
resolved by Dagster's `EnvVar` in `unified_assets.resources`, never here.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR_VAR = "UNIFIED_ASSETS_DATA_DIR"
HISTORY_START_VAR = "UNIFIED_ASSETS_HISTORY_START"
DEFAULT_HISTORY_START = date(2026, 1, 1)
DAILY_PIPELINE_CRON_VAR = "UNIFIED_ASSETS_DAILY_PIPELINE_CRON"
DEFAULT_DAILY_PIPELINE_CRON = "0 2 * * *"  # 02:00 UTC


class SettingError(ValueError):
    """A configuration value the user set is unusable; the message names the setting."""


# The data folder's path is written into SQL text (dbt's sources read `read_parquet('<folder>/lake/...')`,
# where it cannot be a parameter) and DuckDB globs it: a quote would end the string, a glob character would
# read other folders. Such a path is refused rather than escaped.
UNSAFE_PATH_CHARACTERS = frozenset("'\"`\\*?[]{}") | {chr(code) for code in range(32)}


def data_dir() -> Path:
    """The one folder everything the platform writes goes under (lake, warehouse, models, reports)."""
    configured = os.environ.get(DATA_DIR_VAR, "").strip()
    folder = Path(configured).expanduser().resolve() if configured else PROJECT_ROOT / "data"
    unsafe = sorted(set(str(folder)) & UNSAFE_PATH_CHARACTERS)
    if unsafe:
        raise SettingError(
            f"{DATA_DIR_VAR}={configured!r}: the data folder's path must not contain "
            f"{' '.join(repr(c) for c in unsafe)} (quotes, backslashes, glob characters and control "
            "characters would reach SQL text and file patterns); choose a plainer path"
        )
    return folder


def warehouse_path() -> Path:
    """The DuckDB file dbt builds (dbt_project/profiles.yml names the same file)."""
    return data_dir() / "warehouse.duckdb"


def lake_dir() -> Path:
    """Parquet files that hand data between steps; dbt reads them as external sources."""
    return data_dir() / "lake"


def alerts_log_path() -> Path:
    """Where failure alerts are appended, one JSON line each: the default sink, and the fallback when a
    configured webhook does not take an alert, so an alert is never only in a process's memory."""
    return data_dir() / "alerts" / "alerts.jsonl"


def inbox_dir() -> Path:
    """Verified webhook deliveries waiting for the business-event sensors (`unified_assets.webhooks`)."""
    return data_dir() / "inbox"


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
