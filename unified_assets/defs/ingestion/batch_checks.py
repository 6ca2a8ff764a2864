"""The batch anomaly score as a check: each landed day of a source against the days landed before it.

Beside the rule-based checks (`history_checks.py`), which each watch one thing, this one scores a day's
batch as a whole (`unified_assets.batch_anomalies`): volume against the usual weekday, prices against each
SKU's usual price, SKUs never seen, usual customers absent, fields stuck at one value. It learns from the
lake itself, the `LEARN_DAYS` days before the days it judges, relearned weekly along a long backfill, so a
first backfill is judged day by day against its own earlier days. It warns and never blocks, like the
other history checks: a high score is worth a look, and names the features behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
)

from unified_assets.batch_anomalies import (
    LEARN_DAYS,
    SHAPES,
    BatchShape,
    BatchSummary,
    BatchVerdict,
    NotEnoughBatches,
    detectors_along,
    summarise,
)
from unified_assets.defs.ingestion.history_checks import partitioned_check_spec
from unified_assets.lake import Lake
from unified_assets.lib.metadata import markdown_list

BATCH_CHECK = "batch_looks_usual"
DAY_FOLDER = "updated_date="


def batch_check_spec(key: AssetKey, partitions_def: PartitionsDefinition) -> AssetCheckSpec:
    return partitioned_check_spec(
        BATCH_CHECK,
        key,
        partitions_def,
        "Scores each landed day as a whole against the days before it (a distance learned from up "
        f"to {LEARN_DAYS} earlier days in the lake): volume against the usual weekday, prices against "
        "each SKU's usual price, SKUs never seen before, usual customers absent, fields stuck at one "
        "value. Warns on a day clearly stranger than the days it learned from and names the features "
        "that drove the score.",
    )


def batch_looks_usual(
    lake: Lake, key: AssetKey, table: str, days: Sequence[str]
) -> list[AssetCheckEvaluation]:
    """One evaluation per day in `days` (partition keys), each learned from the lake's earlier days."""
    judged = [date.fromisoformat(day) for day in days]
    if not judged:
        return []
    landed = _landed_summaries(lake, table, SHAPES[table], judged)
    evaluations = []
    for day, detector in detectors_along(judged, landed, SHAPES[table]):
        if isinstance(detector, NotEnoughBatches):
            evaluations.append(_not_judged(key, day, str(detector)))
        elif day not in landed:
            evaluations.append(_not_judged(key, day, f"{table}: no file landed for {day}"))
        else:
            evaluations.append(_judged(key, detector.score(landed[day])))
    return evaluations


def _landed_summaries(
    lake: Lake, table: str, shape: BatchShape, judged: list[date]
) -> dict[date, BatchSummary]:
    """The summary of every landed day the judgement needs: the judged days and the days before them."""
    first, last = min(judged) - timedelta(days=LEARN_DAYS), max(judged)
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


def _judged(key: AssetKey, verdict: BatchVerdict) -> AssetCheckEvaluation:
    missing = {"missing_customer": verdict.missing_customer} if verdict.missing_customer else {}
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
            **missing,
            "drivers": MetadataValue.md(
                markdown_list(
                    f"{d.describe()}: {d.strangeness:.1f} usual spreads away"
                    for d in verdict.drivers
                )
            ),
        },
    )


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
