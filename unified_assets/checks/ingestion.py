"""Checks on what the raw assets landed in the lake."""

from collections import Counter

import duckdb
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check

from unified_assets import settings
from unified_assets.lake import Lake
from unified_assets.redaction import PLACEHOLDERS, find_pii

SUPPORT_TICKETS = AssetKey(["raw", "support_tickets"])
TEXT_COLUMNS = ("subject", "description", "_raw")
BATCH_ROWS = 5_000
EXAMPLES = 10


@asset_check(
    asset=SUPPORT_TICKETS,
    name="no_pii_in_landed_text",
    blocking=True,
    description=(
        "Scans every landed ticket (subject, description and the raw JSON) for e-mail addresses, "
        "phone numbers, card numbers and IBANs that escaped redaction. Blocking: a leak must not "
        "reach the warehouse. Reports counts and ticket ids, never the values found."
    ),
)
def no_pii_in_landed_text() -> AssetCheckResult:
    findings, leaking, scanned = scan_landed_tickets(Lake(settings.lake_dir()))
    return AssetCheckResult(
        passed=not leaking,
        severity=AssetCheckSeverity.ERROR,
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
    with duckdb.connect() as con:
        cursor = con.execute(
            f"select id, {', '.join(TEXT_COLUMNS)} from read_parquet(?)", [[str(f) for f in files]]
        )
        while batch := cursor.fetchmany(BATCH_ROWS):
            for ticket_id, *texts in batch:
                scanned += 1
                kinds = [match.kind for text in texts if text for match in find_pii(text)]
                if kinds:
                    findings.update(kinds)
                    leaking.add(str(ticket_id))
    return findings, leaking, scanned
