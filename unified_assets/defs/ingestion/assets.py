"""Raw extracts: one asset per source, partitioned by the day records were last updated.

A partition is a closed window of the source's incremental filter, so re-running a partition replaces
exactly that day's file, a backfill is a range of windows extracted in one run (one pass over the API,
which matters for Zendesk's 10-requests-a-minute export), and "new data" means "today's window changed".
Records stream page by page to a staging file; support-ticket text is PII-redacted before anything is
written; the lake publishes each day atomically.
"""

import resource
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    DailyPartitionsDefinition,
    Failure,
    FreshnessPolicy,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableSchema,
    asset,
)

from unified_assets import settings
from unified_assets.defs.ingestion.source_fields import (
    SOURCE_FIELDS,
    SOURCE_FIELDS_RECORDS,
    source_fields_schema,
)
from unified_assets.lake import LandedPartitions, RawTable
from unified_assets.lib.keys import DATA_PLATFORM, RAW_EXTRACTS, run_total_tag
from unified_assets.lib.metadata import markdown_table
from unified_assets.lib.pools import holds_its_pool
from unified_assets.lib.storage import PlatformStorage
from unified_assets.places import LakeWriteError
from unified_assets.quality import FieldCensus
from unified_assets.redaction import PLACEHOLDERS, redact_record
from unified_assets.settings import SettingError
from unified_assets.sources import coupa, quickbooks, zendesk
from unified_assets.sources.http import CredentialsRejected, SourceError
from unified_assets.sources.paging import ExtractionStats, Window, iso_utc

daily_partitions = DailyPartitionsDefinition(
    start_date=settings.history_start().isoformat(), end_offset=1, timezone="UTC"
)


@dataclass(frozen=True)
class RawSource:
    """Everything that differs between the three raw extracts."""

    table: str
    resource_key: str
    system: str
    description: str
    raw_columns: str
    updated_at: Callable[[dict[str, Any]], datetime]
    freshness: FreshnessPolicy
    prepare: Callable[[dict[str, Any]], tuple[dict[str, Any], Counter[str]]] | None = None

    @property
    def key(self) -> AssetKey:
        return RAW_EXTRACTS[self.system]


RAW_SOURCES = (
    RawSource(
        table="invoices",
        resource_key="accounting_api",
        system="accounting",
        description=(
            "Invoices from the accounting system (QuickBooks Online query API), one file per day of "
            "last update. Each row is one invoice version with its sales lines (`lines`) and the "
            "complete record as returned by the API (`_raw`)."
        ),
        raw_columns=quickbooks.RAW_COLUMNS,
        updated_at=quickbooks.invoice_updated_at,
        freshness=FreshnessPolicy.time_window(
            fail_window=timedelta(hours=26), warn_window=timedelta(hours=6)
        ),
    ),
    RawSource(
        table="purchase_orders",
        resource_key="purchasing_api",
        system="purchasing",
        description=(
            "Purchase orders from the purchase-order system (Coupa API), one file per day of last "
            "update. Each row is one purchase-order version with its order lines (`lines`) and the "
            "complete record as returned by the API (`_raw`)."
        ),
        raw_columns=coupa.RAW_COLUMNS,
        updated_at=coupa.purchase_order_updated_at,
        freshness=FreshnessPolicy.time_window(
            fail_window=timedelta(hours=26), warn_window=timedelta(hours=6)
        ),
    ),
    RawSource(
        table="support_tickets",
        resource_key="support_api",
        system="support",
        description=(
            "Support tickets from the customer-service system (Zendesk incremental export), one file "
            "per day of last update, including deleted tickets (status `deleted`). E-mail addresses, "
            "phone numbers, card numbers and IBANs are replaced by placeholders before anything is "
            "written, in the typed columns and in `_raw` alike."
        ),
        raw_columns=zendesk.RAW_COLUMNS,
        updated_at=zendesk.ticket_updated_at,
        freshness=FreshnessPolicy.time_window(
            fail_window=timedelta(hours=2), warn_window=timedelta(minutes=30)
        ),
        prepare=redact_record,
    ),
)


def partition_days(context: AssetExecutionContext) -> tuple[Window, list[date]]:
    """The run's window of last-update time and the days it covers, checked against the history."""
    time_window = context.partition_time_window
    window = Window(time_window.start.astimezone(UTC), time_window.end.astimezone(UTC))
    start = settings.history_start()
    if window.start.date() < start:
        raise SettingError(
            f"partition {window.start.date()} is before the start of history {start} "
            f"({settings.HISTORY_START_VAR})"
        )
    if window.start > datetime.now(UTC):
        raise SettingError(f"partition {window.start.date()} has not started yet")
    days = [
        window.start.date() + timedelta(days=n) for n in range((window.end - window.start).days)
    ]
    return window, days


# Run tags holding an extraction's totals: `unified_assets/<table>.<figure>`.

# A source still failing after the HTTP layer's own retries is usually down for minutes, not seconds.
RAW_RETRY_POLICY = RetryPolicy(
    max_retries=2, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def build_raw_asset(
    source: RawSource, retry_policy: RetryPolicy | None = RAW_RETRY_POLICY
) -> AssetsDefinition:
    with warnings.catch_warnings():
        # single_run() is a deliberate decision (one pass over each API per range); Dagster flags the
        # parameter as beta on every import, in every step process.
        warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy")
        return _raw_asset(source, retry_policy)


def _raw_asset(source: RawSource, retry_policy: RetryPolicy | None) -> AssetsDefinition:
    @asset(
        key=source.key,
        description=source.description,
        group_name="ingestion",
        owners=[DATA_PLATFORM],
        kinds={"python", "parquet"},
        tags={"source_system": source.system},
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=retry_policy,
        freshness_policy=source.freshness,
        required_resource_keys={source.resource_key, "storage"},
        pool=f"{source.system}_api",
    )
    @holds_its_pool
    def raw_extract(context: AssetExecutionContext) -> MaterializeResult:
        try:
            return extract_to_lake(context, source, context.resources.storage)
        except (SettingError, CredentialsRejected) as error:
            raise Failure(description=str(error), allow_retries=False) from None
        except SourceError as error:
            raise Failure(description=str(error)) from None
        except LakeWriteError as error:
            raise Failure(
                description=(
                    f"raw/{source.table}: {error}. Days published before it are whole and the others "
                    "untouched; re-run the same partitions once the disk has room."
                )
            ) from None

    return raw_extract


def extract_to_lake(
    context: AssetExecutionContext, source: RawSource, storage: PlatformStorage
) -> MaterializeResult:
    """One walk over the run's window, landed as one file per day. Each day's materialization describes
    that day (its rows, the records it was built from, its window, what was redacted); the run's totals
    (pages, retries, records, duplicates) go on the run as tags and in its last log line."""
    window, days = partition_days(context)
    api = getattr(context.resources, source.resource_key)
    lake = storage.lake()
    extracted_at = datetime.now(UTC)
    read_at = api.now()  # the source's own time: how old each day was when it was read
    stats = ExtractionStats()
    redactions: defaultdict[date, Counter[str]] = defaultdict(Counter)
    census = FieldCensus()
    context.log.info(f"{api.SYSTEM}: extracting records updated in {window}")
    with api.open_extractor(context.log) as client, lake.open_staging(source.table) as staging:
        for page in client.extract(window):
            records = list(_prepared(page.records, source, redactions))
            for record in records:
                census.add(record)
            staging.append(records)
            stats.add(page, source.updated_at)
            context.log.info(
                f"{api.SYSTEM}: page {page.number}: {len(records)} records in window "
                f"({page.received} received, {page.retries} retries, {page.elapsed_s:.2f} s); "
                f"{stats.records} so far"
            )
        staging.finish()
        landed = lake.publish_days(
            RawTable(source.table, source.raw_columns), staging, days, extracted_at
        )
    redacted = sum(sum(counts.values()) for counts in redactions.values())
    context.log.info(
        f"{api.SYSTEM}: {stats.records} records in {stats.pages} pages ({stats.retries} retries) for "
        f"{window}; landed {sum(landed.rows_by_day.values())} rows in {len(landed.files)} day files, "
        f"{landed.duplicates_dropped} duplicates dropped"
        + (f", {redacted} PII values redacted" if source.prepare else "")
    )
    context.instance.add_run_tags(context.run.run_id, _run_totals(source, window, stats, landed))
    preview = [{k: v for k, v in row.items() if k != "lines"} for row in landed.preview]
    detail: dict[str, Any] = {
        "preview": MetadataValue.md(markdown_table(preview)),
        "dagster/column_schema": _column_schema(landed),
    }
    if census.records:
        detail[SOURCE_FIELDS] = source_fields_schema(census)
        detail[SOURCE_FIELDS_RECORDS] = census.records
    _add_partition_metadata(context, source, landed, stats, redactions, detail, read_at)
    return MaterializeResult()


def _prepared(
    records: Iterable[dict[str, Any]],
    source: RawSource,
    redactions: defaultdict[date, Counter[str]],
) -> Iterable[dict[str, Any]]:
    for record in records:
        if source.prepare is None:
            yield record
            continue
        prepared, counts = source.prepare(record)
        redactions[source.updated_at(record).astimezone(UTC).date()].update(counts)
        yield prepared


def _add_partition_metadata(
    context: AssetExecutionContext,
    source: RawSource,
    landed: LandedPartitions,
    stats: ExtractionStats,
    redactions: defaultdict[date, Counter[str]],
    detail: dict[str, Any],
    read_at: datetime,
) -> None:
    """Each day: its rows and file, its window, the records received for it, what was redacted in it,
    and when the source was read, in its own time (a day read long after it ended holds only the records
    last updated on it: capacity planning tells that from what a nightly run receives).
    The newest day also carries the run's `detail` (the preview, the column schema and the source
    fields: the large entries), which the UI shows as the latest materialization and the schema check
    reads; a year's backfill would otherwise serialize them 365 times."""
    newest = max(landed.rows_by_day)
    for day, rows in landed.rows_by_day.items():
        metadata: dict[str, Any] = {
            "dagster/row_count": rows,
            "path": MetadataValue.path(str(landed.files[day])),
            "window": f"[{day.isoformat()}T00:00:00Z, {(day + timedelta(days=1)).isoformat()}T00:00:00Z)",
            "records_received": stats.records_by_day.get(day, 0),
            "extracted_at": iso_utc(read_at),
        }
        if source.prepare is not None:
            metadata["pii_redacted"] = {kind: redactions[day].get(kind, 0) for kind in PLACEHOLDERS}
        context.add_asset_metadata(
            {**metadata, **(detail if day == newest else {})}, partition_key=day.isoformat()
        )


def _run_totals(
    source: RawSource, window: Window, stats: ExtractionStats, landed: LandedPartitions
) -> dict[str, str]:
    """The extraction's totals as run tags (`<table>.<figure>`): the run page shows them, and they
    describe the run rather than any one day."""
    totals = {
        "window": str(window),
        "pages": stats.pages,
        "retries": stats.retries,
        "records_received": stats.records,
        "rows_landed": sum(landed.rows_by_day.values()),
        "duplicates_dropped": landed.duplicates_dropped,
        "uncastable_values": sum(landed.uncastable.values()),
        "newest_update": iso_utc(landed.newest_update) if landed.newest_update else "none",
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    return {run_total_tag(source.table, name): str(value) for name, value in totals.items()}


def peak_memory_mb() -> float:
    """The step process's peak resident memory so far, as the kernel counts it (a process forked from
    the executor's server starts from the server's resident pages): what capacity planning sizes runs by."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _column_schema(landed: LandedPartitions) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, kind) for name, kind in landed.columns])


raw_assets = [build_raw_asset(source) for source in RAW_SOURCES]
