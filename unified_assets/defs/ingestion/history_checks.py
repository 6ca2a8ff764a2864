"""Checks that compare each raw extract with its source's own history: volume, drift and schema.

All three warn and never block: an unusual day is worth a look, not a stopped pipeline (a sale doubles
the invoices; a vendor adds a field). They run after the extract, in the same run (see `checks.py`), and
can be re-run alone from the UI. History comes from earlier materializations' metadata (row counts and the
fields the API sent) and, for drift, from the partitions already in the lake.
"""

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    EventLogRecord,
    MetadataValue,
)

from unified_assets.confined_duckdb import confined_duckdb
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


def row_count_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(
        name="row_count_in_usual_range",
        asset=key,
        description=(
            "Each partition of the latest extract against the same weekday over the previous "
            f"{VOLUME_WEEKS} weeks, extracted as long after their day (records move to the day of "
            "their last update; today's partial day pro rata): warns on a collapse below 30% or a "
            "spike above 3x the usual count, when the difference is also statistically clear."
        ),
    )


def row_count_in_usual_range(instance: DagsterInstance, key: AssetKey) -> AssetCheckResult:
    current = [r for r in latest_run_records(instance, key) if row_count(r) is not None]
    verdicts = [
        judge_volume(
            partition_day(record),
            row_count(record),
            _covered(record),
            _daily_rates(instance, record),
        )
        for record in current
    ]
    anomalies = [verdict for verdict in verdicts if verdict.anomalous]
    unjudged = sum(verdict.expected is None for verdict in verdicts)
    description = _summary(anomalies, len(verdicts) - unjudged, "row counts in the usual range")
    if not anomalies and unjudged:
        description = (
            f"{len(verdicts) - unjudged} row counts in the usual range; {unjudged} days had no "
            "earlier extract of a similar age to compare with (a first backfill has none)."
        )
    return AssetCheckResult(
        passed=not anomalies,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "partitions_checked": len(verdicts),
            "anomalies": len(anomalies),
            "partitions": MetadataValue.md(
                markdown_list([v.describe() for v in (anomalies or verdicts)[-SHOWN:]])
            ),
        },
    )


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
    files = [str(path) for day in days if (path := lake.partition_file(table, day)).exists()]
    if not files:
        return {name: np.array([], dtype=float) for name in fields}
    columns = ", ".join(
        f"cast({expression} as double) as {name}" for name, expression in fields.items()
    )
    with confined_duckdb(allowed=[lake.root]) as con:
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
