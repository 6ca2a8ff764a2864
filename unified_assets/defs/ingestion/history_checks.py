"""Checks that compare each raw extract with its source's own history: volume, drift and schema.

All three warn and never block: an unusual day is worth a look, not a stopped pipeline (a sale doubles
the invoices; a vendor adds a field). They run after the extract, in the same run (see `checks.py`), and
can be re-run alone from the UI. History comes from earlier materializations' metadata (row counts and the
fields the API sent) and, for drift, from the partitions already in the lake.
"""

import warnings
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    EventLogRecord,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
)

# Not exported by dagster, but what AssetCheckEvaluation takes to link a result to the materialization
# it judged (the UI's "target materialization"); an AssetCheckResult gets it from its step.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from unified_assets.defs.ingestion.source_fields import (
    SOURCE_FIELDS,
    SOURCE_FIELDS_RECORDS,
    source_fields_from_schema,
)
from unified_assets.lake import Lake
from unified_assets.lib.metadata import markdown_list
from unified_assets.quality import (
    VOLUME_WEEKS,
    SourceFields,
    VolumeVerdict,
    comparable_extracts,
    covered_fraction,
    extract_age,
    judge_drift,
    judge_volume,
    schema_changes,
)

# Enough materialization records to hold the latest run of a year-long backfill and the runs before it.
RECENT_RECORDS = 1_000
# Re-extractions of one partition to look through for one extracted at a comparable age.
REFERENCE_CANDIDATES = 5
SCHEMA_BASELINE_RUNS = 10
DRIFT_REFERENCE_DAYS = 28
SHOWN = 20

# Numeric fields whose distribution should not jump between days: SQL over the landed lines.
DRIFT_FIELDS = {
    "invoices": {"line_quantity": "line.quantity", "line_amount": "line.amount"},
    "purchase_orders": {"line_quantity": "line.quantity", "line_price": "line.price"},
}


def latest_run_records(instance: DagsterInstance, key: AssetKey) -> list[EventLogRecord]:
    """The materializations (one per partition) of the most recent run that landed this asset."""
    records = instance.fetch_materializations(key, limit=RECENT_RECORDS).records
    return [record for record in records if record.run_id == records[0].run_id] if records else []


def partition_day(record: EventLogRecord) -> date:
    return date.fromisoformat(record.partition_key)


def record_metadata(record: EventLogRecord) -> dict:
    return record.asset_materialization.metadata


def row_count(record: EventLogRecord) -> int | None:
    """The partition's row count, or None for a materialization that did not record one (reported by
    hand, or landed by an older version of the asset)."""
    value = record_metadata(record).get("dagster/row_count")
    return None if value is None else value.value


# --- volume ------------------------------------------------------------------------------------------


ROW_COUNT_CHECK = "row_count_in_usual_range"


def partitioned_check_spec(
    name: str, key: AssetKey, partitions_def: PartitionsDefinition, description: str
) -> AssetCheckSpec:
    """A check judged per partition, so the UI shows each day's verdict on that day. Partitioned checks
    are a preview feature of Dagster 1.13; its warning, printed by every process that loads the
    definitions, is silenced here, where the choice is made (the lock file pins the Dagster it was
    tested with)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name=name, asset=key, partitions_def=partitions_def, description=description
        )


def row_count_spec(key: AssetKey, partitions_def: PartitionsDefinition) -> AssetCheckSpec:
    return partitioned_check_spec(
        ROW_COUNT_CHECK,
        key,
        partitions_def,
        "Each day's row count against the same weekday over the previous "
        f"{VOLUME_WEEKS} weeks, extracted as long after their day (records move to the day of "
        "their last update; today's partial day pro rata): warns on a collapse below 30% or a "
        "spike above 3x the usual count, when the difference is also statistically clear. Judged "
        "per partition: each day of an extract passes or warns on its own.",
    )


def row_count_in_usual_range(
    instance: DagsterInstance, key: AssetKey, days: Sequence[str] | None
) -> list[AssetCheckEvaluation]:
    """One evaluation per day, on that day's partition: `days` are the partitions the run checks (None
    in a run without partitions: the days of the latest extract)."""
    evaluations = []
    for record in _latest_with_row_counts(instance, key, days):
        verdict = judge_volume(
            partition_day(record),
            row_count(record),
            _covered(record),
            _daily_rates(instance, record),
        )
        evaluations.append(
            AssetCheckEvaluation(
                asset_key=key,
                check_name=ROW_COUNT_CHECK,
                passed=not verdict.anomalous,
                severity=AssetCheckSeverity.WARN,
                blocking=False,
                partition=record.partition_key,
                description=_volume_description(verdict),
                metadata={
                    "rows": verdict.rows,
                    "status": verdict.status,
                    **({} if verdict.expected is None else {"usual_rows": round(verdict.expected)}),
                },
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
                ),
            )
        )
    return evaluations


def _latest_with_row_counts(
    instance: DagsterInstance, key: AssetKey, days: Sequence[str] | None
) -> list[EventLogRecord]:
    """The newest materialization of each day that carries a row count (a partition reported by hand
    carries none and is not judged). The latest run's records serve a range run in one query."""
    latest = {record.partition_key: record for record in latest_run_records(instance, key)}
    if days is None:
        records = list(latest.values())
    else:
        records = [latest.get(day) or _newest_of(instance, key, day) for day in days]
    return [record for record in records if record is not None and row_count(record) is not None]


def _newest_of(instance: DagsterInstance, key: AssetKey, day: str) -> EventLogRecord | None:
    filter_ = AssetRecordsFilter(asset_key=key, asset_partitions=[day])
    return next(iter(instance.fetch_materializations(filter_, limit=1).records), None)


def _volume_description(verdict: VolumeVerdict) -> str:
    if verdict.status == "no history":
        return (
            f"{verdict.rows} rows; no earlier extract of this weekday at a similar age to compare "
            "with (a first backfill has none)."
        )
    if verdict.status == "too early":
        return f"{verdict.rows} rows; too little of the day has passed to judge."
    return f"{verdict.rows} rows, usually ~{verdict.expected:.0f}: {verdict.status}."


def _covered(record: EventLogRecord) -> float:
    return covered_fraction(partition_day(record), _extracted_at(record))


def _extracted_at(record: EventLogRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp, UTC)


def _age(record: EventLogRecord) -> timedelta:
    return extract_age(partition_day(record), _extracted_at(record))


def _daily_rates(instance: DagsterInstance, current: EventLogRecord) -> dict[date, float]:
    """Full-day row rates of the same weekday in earlier weeks, each from the latest of its recent
    materializations by an earlier run that was extracted about as long after its day as `current` (see
    `comparable_extracts`).

    Only earlier runs: "usual" is what earlier extracts saw. Within one backfill every day is landed at
    a different age, and records move to the day of their last update (an invoice to its payment), so a
    first backfill of two years judged its own recent weeks against its older ones and raised dozens of
    spikes and collapses on clean data; a first backfill has no usual to compare with."""
    key, day, age = current.asset_key, partition_day(current), _age(current)
    rates: dict[date, float] = {}
    for weeks in range(1, VOLUME_WEEKS + 1):
        earlier = day - timedelta(weeks=weeks)
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[earlier.isoformat()]),
            limit=REFERENCE_CANDIDATES,
        ).records
        for record in records:
            if record.run_id == current.run_id:
                continue
            rows, covered = row_count(record), _covered(record)
            if rows is not None and covered and comparable_extracts(age, _age(record)):
                rates[earlier] = rows / covered
                break
    return rates


# --- distribution drift ------------------------------------------------------------------------------


def numeric_drift_spec(key: AssetKey, table: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        name="no_numeric_drift",
        asset=key,
        description=(
            f"Compares the distribution of {', '.join(DRIFT_FIELDS[table])} in the latest extract with "
            f"the {DRIFT_REFERENCE_DAYS} days before it (two-sample Kolmogorov-Smirnov): warns when the "
            "difference is both significant and material, e.g. a unit or currency change."
        ),
    )


def no_numeric_drift(
    instance: DagsterInstance, lake: Lake, key: AssetKey, table: str
) -> AssetCheckResult:
    fields = DRIFT_FIELDS[table]
    days = sorted({partition_day(r) for r in latest_run_records(instance, key)})
    verdicts = []
    if days:
        reference_days = [days[0] - timedelta(days=n) for n in range(1, DRIFT_REFERENCE_DAYS + 1)]
        current = _landed_values(lake, table, days, fields)
        reference = _landed_values(lake, table, reference_days, fields)
        verdicts = [judge_drift(name, reference[name], current[name]) for name in fields]
    drifted = [verdict for verdict in verdicts if verdict.drifted]
    return AssetCheckResult(
        passed=not drifted,
        severity=AssetCheckSeverity.WARN,
        description=_summary(drifted, len(verdicts), "fields without drift"),
        metadata={
            "current_days": f"{days[0]} to {days[-1]}" if days else "none",
            **{f"{v.field}_ks_statistic": v.statistic for v in verdicts if v.statistic is not None},
            "fields": MetadataValue.md(markdown_list([v.describe() for v in verdicts])),
        },
    )


def _landed_values(
    lake: Lake, table: str, days: Sequence[date], fields: dict[str, str]
) -> dict[str, np.ndarray]:
    files = [path for day in days if lake.exists(path := lake.partition_file(table, day))]
    if not files:
        return {name: np.array([], dtype=float) for name in fields}
    columns = ", ".join(
        f"cast({expression} as double) as {name}" for name, expression in fields.items()
    )
    with lake.connect() as con:
        frame = con.execute(
            f"select {columns} from (select unnest(lines) as line from read_parquet(?))", [files]
        ).fetchnumpy()
    return {name: np.asarray(frame[name], dtype=float) for name in fields}


# --- source schema -----------------------------------------------------------------------------------


def source_schema_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(
        name="source_schema_unchanged",
        asset=key,
        description=(
            "The fields the API sent in the latest extract against the previous "
            f"{SCHEMA_BASELINE_RUNS}: new fields, fields every earlier record had and some now lack, "
            "and changed JSON types. A warning to read, not a failure: `_raw` keeps every field."
        ),
    )


def source_schema_unchanged(instance: DagsterInstance, key: AssetKey) -> AssetCheckResult:
    schemas = _source_fields_by_run(instance, key)
    if not schemas:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description="No extract with records yet.",
        )
    current, *baseline = schemas
    changes = schema_changes(baseline, current)
    return AssetCheckResult(
        passed=not changes.changed,
        severity=AssetCheckSeverity.WARN,
        description=changes.describe(),
        metadata={
            "baseline_extracts": changes.baseline_runs,
            "new_fields": ", ".join(changes.added) or "none",
            "missing_fields": ", ".join(changes.missing) or "none",
            "changed_types": ", ".join(changes.retyped) or "none",
        },
    )


def _source_fields_by_run(instance: DagsterInstance, key: AssetKey) -> list[SourceFields]:
    """The source fields of recent runs that received records, newest first."""
    by_run: OrderedDict[str, SourceFields] = OrderedDict()
    for record in instance.fetch_materializations(key, limit=RECENT_RECORDS).records:
        metadata = record_metadata(record)
        schema = metadata.get(SOURCE_FIELDS)
        if schema is not None and record.run_id not in by_run:
            # Materializations from before the per-day metadata carried the count as records_received.
            received = metadata.get(SOURCE_FIELDS_RECORDS, metadata.get("records_received"))
            by_run[record.run_id] = source_fields_from_schema(
                schema.value, None if received is None else received.value
            )
        if len(by_run) > SCHEMA_BASELINE_RUNS:
            break
    return list(by_run.values())


# --- shared ------------------------------------------------------------------------------------------


def _summary(problems: Sequence, checked: int, good: str) -> str:
    if problems:
        return "; ".join(problem.describe() for problem in problems[:SHOWN])
    return f"{checked} {good}." if checked else "Nothing landed yet."
