"""Compare what landed in the lake with the simulator's ground truth for the same window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from unified_assets.lake import Lake

TABLE_SYSTEM = {
    "invoices": "accounting",
    "purchase_orders": "purchasing",
    "support_tickets": "support",
}

Version = tuple[str, datetime]


def day_window(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(), tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)


def landed_versions(lake: Lake | Path, table: str, first: date, last: date) -> set[Version]:
    """Distinct (id, updated_at) across the day files of [first, last] of a lake (or a lake folder);
    every file must exist."""
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    files = [lake.partition_file(table, day) for day in days]
    missing = [path for path in files if not lake.exists(path)]
    assert not missing, f"partitions not landed: {missing}"
    with lake.connect() as con:
        rows = con.execute(
            "select distinct id, updated_at from read_parquet(?)", [files]
        ).fetchall()
    return {(record_id, moment.astimezone(UTC)) for record_id, moment in rows}


def true_versions(world, table: str, first: date, last: date, as_of: datetime) -> set[Version]:
    start, end = day_window(first, last)
    truth = world.ground_truth(
        TABLE_SYSTEM[table], as_of=as_of, updated_from=start, updated_to=end, include_records=False
    )
    return {
        (str(record_id), moment.to_pydatetime().astimezone(UTC))
        for record_id, moment in zip(truth["id"], truth["updated_at"], strict=True)
    }
