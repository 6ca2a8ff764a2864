"""The lake publishes whole partitions atomically, replaces them on re-run and loses nothing it staged."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from unified_assets.lake import Lake, RawTable, remove_orphans

TABLE = RawTable(
    "things",
    projection="""
        json ->> '$.id' as id,
        cast(json ->> '$.updated' as timestamptz) as updated_at,
        try_cast(json ->> '$.qty' as integer) as qty,
        json as _raw
    """,
)
EXTRACTED_AT = datetime(2026, 3, 5, tzinfo=UTC)
DAY = date(2026, 3, 1)


def thing(record_id: str, updated: str, qty: object = 1) -> dict:
    return {"id": record_id, "updated": updated, "qty": qty}


def land(lake: Lake, records: list[dict], days: list[date]):
    with lake.open_staging(TABLE.name) as staging:
        staging.append(records)
        staging.finish()
        return lake.publish_days(TABLE, staging, days, EXTRACTED_AT)


def read(path) -> list[tuple]:
    return duckdb.sql(f"select id, qty from read_parquet('{path}') order by id").fetchall()


def test_records_land_in_the_day_of_their_update_in_utc(tmp_path):
    lake = Lake(tmp_path)
    landed = land(
        lake,
        [
            thing("a", "2026-03-01T10:00:00Z"),
            thing("b", "2026-03-01T23:30:00-08:00"),  # 07:30 UTC on 2 March
            thing("c", "2026-03-02T00:00:00Z", qty=3),
        ],
        [date(2026, 3, 1), date(2026, 3, 2)],
    )
    assert landed.rows_by_day == {date(2026, 3, 1): 1, date(2026, 3, 2): 2}
    assert read(lake.partition_file("things", date(2026, 3, 2))) == [("b", 1), ("c", 3)]
    assert ("_raw", "JSON") in landed.columns
    assert not any(name == "updated_date" for name, _ in landed.columns)


def test_days_without_records_get_an_empty_file_so_a_rerun_clears_moved_records(tmp_path):
    lake = Lake(tmp_path)
    day = date(2026, 3, 1)
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [day])
    landed = land(lake, [], [day])
    assert landed.rows_by_day == {day: 0}
    assert read(lake.partition_file("things", day)) == []


def test_rerunning_a_partition_replaces_exactly_that_partition(tmp_path):
    lake = Lake(tmp_path)
    land(
        lake,
        [thing("a", "2026-03-01T10:00:00Z"), thing("b", "2026-03-02T10:00:00Z")],
        [date(2026, 3, 1), date(2026, 3, 2)],
    )
    first = lake.partition_file("things", date(2026, 3, 1)).read_bytes()
    land(lake, [thing("b", "2026-03-02T10:00:00Z", qty=9)], [date(2026, 3, 2)])
    assert lake.partition_file("things", date(2026, 3, 1)).read_bytes() == first
    assert read(lake.partition_file("things", date(2026, 3, 2))) == [("b", 9)]


def test_same_input_gives_identical_rows(tmp_path):
    records = [thing(str(i), f"2026-03-01T{i % 24:02d}:00:00Z", qty=i) for i in range(50)]
    lake = Lake(tmp_path)
    land(lake, records, [date(2026, 3, 1)])
    before = read(lake.partition_file("things", date(2026, 3, 1)))
    land(lake, list(reversed(records)), [date(2026, 3, 1)])
    assert read(lake.partition_file("things", date(2026, 3, 1))) == before


def test_repeated_versions_are_kept_once_and_distinct_versions_all_kept(tmp_path):
    lake = Lake(tmp_path)
    landed = land(
        lake,
        [
            thing("a", "2026-03-01T10:00:00Z"),
            thing("a", "2026-03-01T10:00:00Z"),
            thing("a", "2026-03-01T11:00:00Z", qty=2),
        ],
        [date(2026, 3, 1)],
    )
    assert landed.duplicates_dropped == 1
    assert landed.rows_by_day == {date(2026, 3, 1): 2}


def test_values_that_do_not_cast_stay_in_raw(tmp_path):
    lake = Lake(tmp_path)
    land(lake, [thing("a", "2026-03-01T10:00:00Z", qty="two")], [date(2026, 3, 1)])
    path = lake.partition_file("things", date(2026, 3, 1))
    row = duckdb.sql(f"select qty, _raw ->> '$.qty' from read_parquet('{path}')").fetchall()[0]
    assert row == (None, "two")


def test_records_outside_the_partitions_are_refused_and_nothing_is_published(tmp_path):
    lake = Lake(tmp_path)
    with pytest.raises(
        ValueError, match=r"things: records updated on \[datetime.date\(2026, 3, 9\)\]"
    ):
        land(lake, [thing("a", "2026-03-09T10:00:00Z")], [date(2026, 3, 1)])
    assert not lake.partition_file("things", date(2026, 3, 1)).exists()


def test_leftovers_of_a_killed_write_are_invisible_and_cleaned_up(tmp_path):
    lake = Lake(tmp_path)
    final = lake.partition_file("things", date(2026, 3, 1))
    final.parent.mkdir(parents=True)
    half_written = final.with_name("data.parquet.tmp-999999999-deadbeef")
    being_written = final.with_name(f"data.parquet.tmp-{os.getpid()}-cafe")
    being_written.write_bytes(b"another live run is writing this")
    half_written.write_bytes(b"PAR1 half a file")
    assert duckdb.sql(f"select count(*) from glob('{lake.table_glob('things')}')").fetchall() == [
        (0,)
    ]
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [date(2026, 3, 1)])
    assert not half_written.exists()
    assert being_written.exists(), "a live writer's file must not be deleted under it"
    assert read(final) == [("a", 1)]


def test_staging_files_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    staging = tmp_path / "_staging"
    staging.mkdir()
    dead = staging / "things.999999999.abc.ndjson"
    alive = staging / f"things.{os.getpid()}.def.ndjson"
    dead.write_text("{}\n")
    alive.write_text("{}\n")
    remove_orphans(staging.glob("*.ndjson"))
    assert not dead.exists()
    assert alive.exists()


def test_staging_file_is_removed_after_use(tmp_path):
    lake = Lake(tmp_path)
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [date(2026, 3, 1)])
    assert list(lake.staging_dir().glob("*.ndjson")) == []


def _publish_repeatedly(root: str, qty: int) -> None:
    lake = Lake(Path(root))
    for _ in range(15):
        land(lake, [thing(str(i), "2026-03-01T10:00:00Z", qty=qty) for i in range(200)], [DAY])


def test_processes_publishing_the_same_partition_at_once_all_succeed(tmp_path):
    """A sensor's run and a manual run may land the same day together: each publish is whole."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pool.starmap(_publish_repeatedly, [(str(tmp_path), qty) for qty in (1, 2, 3)])
    rows = read(Lake(tmp_path).partition_file("things", DAY))
    assert len(rows) == 200
    assert len({qty for _, qty in rows}) == 1, "the file must come from one publish, not a mix"
    assert list(Lake(tmp_path).partition_file("things", DAY).parent.glob("*.tmp-*")) == []
