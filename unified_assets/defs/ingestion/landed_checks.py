"""Checks on what the raw assets landed in the lake: PII that escaped redaction, values that do not cast.

Each is a spec (what the UI shows) and a function that evaluates it; `checks.py` runs them."""

from collections import Counter

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from unified_assets.lake import Lake
from unified_assets.redaction import PLACEHOLDERS, find_pii

SUPPORT_TICKETS = AssetKey(["raw", "support_tickets"])
TEXT_COLUMNS = ("subject", "description", "_raw")
BATCH_ROWS = 5_000
EXAMPLES = 10


NO_PII_IN_LANDED_TEXT = AssetCheckSpec(
    name="no_pii_in_landed_text",
    asset=SUPPORT_TICKETS,
    blocking=True,
    description=(
        "Scans every landed ticket (subject, description and the raw JSON) for e-mail addresses, "
        "phone numbers, card numbers and IBANs that escaped redaction. Blocking: a leak must not "
        "reach the warehouse. Reports counts and ticket ids, never the values found."
    ),
)


def no_pii_in_landed_text(lake: Lake) -> AssetCheckResult:
    findings, leaking, scanned = scan_landed_tickets(lake)
    found = ", ".join(f"{findings[kind]} {kind}" for kind in PLACEHOLDERS if findings[kind])
    return AssetCheckResult(
        passed=not leaking,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(leaking)} of {scanned} landed tickets hold PII that escaped redaction ({found}); "
            f"e.g. tickets {', '.join(sorted(leaking)[:EXAMPLES])}"
            if leaking
            else f"No PII in the {scanned} landed tickets."
        ),
        metadata={
            "tickets_scanned": scanned,
            "tickets_with_pii": len(leaking),
            **{f"found_{kind}": findings.get(kind, 0) for kind in PLACEHOLDERS},
            "example_ticket_ids": ", ".join(sorted(leaking)[:EXAMPLES]) or "none",
        },
    )


def scan_landed_tickets(lake: Lake) -> tuple[Counter[str], set[str], int]:
    """Kinds of PII found, the ids of tickets holding any, and how many tickets were read."""
    files = lake.partition_files("support_tickets")
    findings: Counter[str] = Counter()
    leaking: set[str] = set()
    scanned = 0
    if not files:
        return findings, leaking, scanned
    with lake.connect() as con:
        cursor = con.execute(f"select id, {', '.join(TEXT_COLUMNS)} from read_parquet(?)", [files])
        while batch := cursor.fetchmany(BATCH_ROWS):
            for ticket_id, *texts in batch:
                scanned += 1
                kinds = [match.kind for text in texts if text for match in find_pii(text)]
                if kinds:
                    findings.update(kinds)
                    leaking.add(str(ticket_id))
    return findings, leaking, scanned


def uncastable_values_spec(key: AssetKey) -> AssetCheckSpec:
    return AssetCheckSpec(
        name="no_uncastable_values",
        asset=key,
        description=(
            "Counts records whose latest version holds a value the source sent that does not cast to "
            "its column's type (text in a number, a malformed date). Staging keeps those records out "
            "instead of reading the value as missing; `_raw` in the lake keeps the original. Warns, "
            "naming the source fields and example ids."
        ),
    )


def no_uncastable_values(lake: Lake, table: str) -> AssetCheckResult:
    by_field, record_ids = find_uncastable(lake, table)
    return AssetCheckResult(
        passed=not record_ids,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(record_ids)} records kept out of staging; values that do not cast in "
            + ", ".join(f"{field} ({count})" for field, count in by_field.items())
            if record_ids
            else "Every value the source sent cast to its column's type."
        ),
        metadata={
            "records_kept_out": len(record_ids),
            "values_by_field": MetadataValue.json(by_field),
            "example_ids": ", ".join(record_ids[:EXAMPLES]) or "none",
        },
    )


def find_uncastable(lake: Lake, table: str) -> tuple[dict[str, int], list[str]]:
    """Values that did not cast, by source field, and the ids of the records holding them, over the
    latest version of each record (the ones staging reads)."""
    files = lake.partition_files(table)
    if not files:
        return {}, []
    with lake.connect() as con:
        versions = con.read_parquet(files, union_by_name=True)
        if "_uncastable" not in versions.columns:  # landed before the column existed
            return {}, []
        versions.create_view("versions")
        con.execute(
            "create temp view latest as select id, _uncastable from versions "
            "qualify row_number() over (partition by id order by updated_at desc) = 1"
        )
        by_field = dict(
            con.execute(
                "select field, count(*) from (select unnest(_uncastable) as field from latest) "
                "group by field order by field"
            ).fetchall()
        )
        ids = con.execute("select id from latest where len(_uncastable) > 0 order by id").fetchall()
    return by_field, [str(record_id) for (record_id,) in ids]
