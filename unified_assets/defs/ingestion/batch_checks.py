"""The batch anomaly score as a check: each landed day of a source against the days landed before it.

Beside the rule-based checks (`history_checks.py`), which each watch one thing, this one scores a day's
batch as a whole (`unified_assets.batch_anomalies`): volume against the usual weekday, prices against each
SKU's usual price, SKUs never seen, usual customers absent, fields stuck at one value. It learns from the
lake itself, the `LEARN_DAYS` days before the days it judges, relearned every `RELEARN_DAYS` days along a
long backfill, so a first backfill is judged day by day against its own earlier days. It warns and never
blocks, like the other history checks: a high score is worth a look, and names the features behind it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
)

from unified_assets.lake import Lake
from unified_assets.lib.metadata import markdown_list

BATCH_CHECK = "batch_looks_usual"
LEARN_DAYS = 120
RELEARN_DAYS = 7
DAY_FOLDER = "updated_date="


def batch_check_spec(key: AssetKey, partitions_def: PartitionsDefinition) -> AssetCheckSpec:
    """Partitioned like `row_count_in_usual_range`: each day's verdict shows on that day."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name=BATCH_CHECK,
            asset=key,
            partitions_def=partitions_def,
            description=(
                "Scores each landed day as a whole against the days before it (a distance "
                f"learned from up to {LEARN_DAYS} earlier days in the lake): volume against the "
                "usual weekday, prices against each SKU's usual price, SKUs never seen before, usual "
                "customers absent, fields stuck at one value. Warns on a day clearly stranger than the "
                "days it learned from and names the features that drove the score."
            ),
        )


def batch_looks_usual(
    lake: Lake, key: AssetKey, table: str, days: Sequence[str]
) -> list[AssetCheckEvaluation]:
    """One evaluation per day in `days` (partition keys), each learned from the lake's earlier days."""
    from unified_assets.batch_anomalies import SHAPES, BatchAnomalyDetector, NotEnoughBatches

    shape = SHAPES[table]
    judged = sorted(date.fromisoformat(day) for day in days)
    if not judged:
        return []
    summaries = _landed_summaries(lake, table, shape, judged)
    evaluations = []
    for start in range(0, len(judged), RELEARN_DAYS):
        week = judged[start : start + RELEARN_DAYS]
        learned = [
            s for d, s in summaries.items() if week[0] - timedelta(LEARN_DAYS) <= d < week[0]
        ]
        try:
            detector = BatchAnomalyDetector(shape).fit(learned)
        except NotEnoughBatches as too_few:
            evaluations += [_not_judged(key, day, str(too_few)) for day in week]
            continue
        for day in week:
            if day not in summaries:
                evaluations.append(_not_judged(key, day, f"{table}: no file landed for {day}"))
                continue
            evaluations.append(_judged(key, detector.score(summaries[day])))
            detector.remember(summaries[day])
    return evaluations


def _landed_summaries(lake: Lake, table: str, shape, judged: list[date]) -> dict:
    """The summary of every landed day the judgement needs: the judged days and the days before them."""
    from unified_assets.batch_anomalies import summarise

    first, last = judged[0] - timedelta(LEARN_DAYS), judged[-1]
    files = {
        day: path for path in lake.partition_files(table) if first <= (day := _day_of(path)) <= last
    }
    with lake.connect() as con:
        return {
            day: summarise(con.read_parquet(path).to_arrow_table(), shape, day)
            for day, path in sorted(files.items())
        }


def _day_of(path: str) -> date:
    """`.../raw/<table>/updated_date=2026-03-01/data.parquet` -> 2026-03-01"""
    return date.fromisoformat(path.rsplit(DAY_FOLDER, 1)[1][:10])


def _judged(key: AssetKey, verdict) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=BATCH_CHECK,
        passed=not verdict.anomalous,
        severity=AssetCheckSeverity.WARN,
        blocking=False,
        partition=verdict.day.isoformat(),
        description=verdict.describe(),
        metadata={
            "score": round(verdict.score, 3),
            "threshold": round(verdict.threshold, 3),
            **_absent_customer(verdict),
            "drivers": MetadataValue.md(
                markdown_list(
                    f"{d.describe()}: {d.strangeness:.1f} usual spreads away"
                    for d in verdict.drivers
                )
            ),
        },
    )


def _absent_customer(verdict) -> dict[str, str]:
    if verdict.absent_customer is None:
        return {}
    customer, rows = verdict.absent_customer
    return {"most_expected_absent_customer": f"{customer} (usually ~{rows:.0f} rows)"}


def _not_judged(key: AssetKey, day: date, reason: str) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=BATCH_CHECK,
        passed=True,
        severity=AssetCheckSeverity.WARN,
        blocking=False,
        partition=day.isoformat(),
        description=f"Not judged: {reason}.",
        metadata={"status": "not judged"},
    )
