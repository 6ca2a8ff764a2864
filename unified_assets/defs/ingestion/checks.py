"""Every check on a raw extract, run together in one step per source after its extract.

One step per source, not one per check: every step is a process that loads the whole code location (a
few seconds), while a source's checks together take about a second. Each check still shows, passes and
fails on its own in the UI and can be run alone from there (the step evaluates only the checks selected).
A failed blocking check fails the step once every selected check has reported, so nothing reads the
asset downstream.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from unified_assets.defs.ingestion.assets import RAW_SOURCES, RawSource, daily_partitions
from unified_assets.defs.ingestion.batch_checks import batch_check_spec, batch_looks_usual
from unified_assets.defs.ingestion.history_checks import (
    DRIFT_FIELDS,
    latest_run_records,
    no_numeric_drift,
    numeric_drift_spec,
    row_count_in_usual_range,
    row_count_spec,
    source_schema_spec,
    source_schema_unchanged,
)
from unified_assets.defs.ingestion.landed_checks import (
    NO_PII_IN_LANDED_TEXT,
    no_pii_in_landed_text,
    no_uncastable_values,
    uncastable_values_spec,
)
from unified_assets.lake import Lake
from unified_assets.lib.storage import PlatformStorage

CheckEvents = Iterable[AssetCheckResult | AssetCheckEvaluation]


@dataclass(frozen=True)
class ExtractCheck:
    spec: AssetCheckSpec
    evaluate: Callable[[AssetCheckExecutionContext, Lake], CheckEvents]


def checked_days(context: AssetCheckExecutionContext) -> list[str] | None:
    """The partitions the run checks; None in a run without partitions (a check run alone)."""
    if context.has_partition_key or context.has_partition_key_range:
        return list(context.partition_keys)
    return None


def checked_or_latest_days(context: AssetCheckExecutionContext, key: AssetKey) -> list[str]:
    """The partitions the run checks, or those the latest extract landed (a check run alone)."""
    days = checked_days(context)
    if days is None:
        days = sorted(
            {record.partition_key for record in latest_run_records(context.instance, key)}
        )
    return days


def extract_checks_for(source: RawSource) -> list[ExtractCheck]:
    """The source's checks, the blocking one first: a leak is reported before anything slower runs."""
    key, table = source.key, source.table
    checks = []
    if key == NO_PII_IN_LANDED_TEXT.asset_key:
        checks.append(
            ExtractCheck(NO_PII_IN_LANDED_TEXT, lambda _, lake: [no_pii_in_landed_text(lake)])
        )
    checks += [
        ExtractCheck(
            uncastable_values_spec(key), lambda _, lake: [no_uncastable_values(lake, table)]
        ),
        ExtractCheck(
            row_count_spec(key, daily_partitions),
            lambda c, _: row_count_in_usual_range(c.instance, key, checked_days(c)),
        ),
        ExtractCheck(
            source_schema_spec(key), lambda c, _: [source_schema_unchanged(c.instance, key)]
        ),
        ExtractCheck(
            batch_check_spec(key, daily_partitions),
            lambda c, lake: batch_looks_usual(lake, key, table, checked_or_latest_days(c, key)),
        ),
    ]
    if table in DRIFT_FIELDS:
        checks.append(
            ExtractCheck(
                numeric_drift_spec(key, table),
                lambda c, lake: [no_numeric_drift(c.instance, lake, key, table)],
            )
        )
    return checks


def build_extract_checks(source: RawSource) -> AssetChecksDefinition:
    checks = extract_checks_for(source)

    @multi_asset_check(
        name=f"{source.table}_extract_checks",
        specs=[check.spec for check in checks],
        can_subset=True,
        description=f"The checks on each extract of {source.table}, in one step.",
    )
    def extract_checks(
        context: AssetCheckExecutionContext, storage: PlatformStorage
    ) -> Iterator[AssetCheckResult | AssetCheckEvaluation]:
        lake = storage.lake()
        for check in checks:
            if check.spec.key in context.selected_asset_check_keys:
                for event in check.evaluate(context, lake):
                    if isinstance(event, AssetCheckResult):
                        event = event._replace(
                            asset_key=check.spec.asset_key, check_name=check.spec.name
                        )
                    yield event

    return extract_checks


raw_extract_checks = [build_extract_checks(source) for source in RAW_SOURCES]
