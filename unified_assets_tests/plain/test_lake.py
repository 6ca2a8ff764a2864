"""The lake publishes whole partitions atomically, replaces them on re-run and loses nothing it staged, in a
local folder and in a bucket alike (`lake` runs each test on both)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from unified_assets.lake import Lake, RawTable
from unified_assets.places import LakeWriteError, S3Prefix, publish_parquet_parts, remove_orphans

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


@pytest.fixture(params=["folder", "bucket"])
def lake(request, tmp_path) -> Lake:
    if request.param == "folder":
        return Lake(tmp_path / "lake")
    s3 = request.getfixturevalue("s3_server")
    place = S3Prefix(
        f"s3://{s3.create_bucket()}/lake", s3.settings(), extensions_dir=tmp_path / "extensions"
    )
    return Lake(place, scratch_dir=tmp_path / "scratch")


def thing(record_id: str, updated: str, qty: object = 1) -> dict:
    return {"id": record_id, "updated": updated, "qty": qty}


def land(lake: Lake, records: list[dict], days: list[date]):
    with lake.open_staging(TABLE.name) as staging:
        staging.append(records)
        staging.finish()
        return lake.publish_days(TABLE, staging, days, EXTRACTED_AT)


def read(lake: Lake, location: str) -> list[tuple]:
    with lake.connect() as con:
        return con.execute("select id, qty from read_parquet(?) order by id", [location]).fetchall()


def content(lake: Lake, location: str) -> bytes:
    with lake.connect() as con:
        return con.execute("select content from read_blob(?)", [location]).fetchone()[0]


def test_records_land_in_the_day_of_their_update_in_utc(lake):
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
    assert read(lake, lake.partition_file("things", date(2026, 3, 2))) == [("b", 1), ("c", 3)]
    assert ("_raw", "JSON") in landed.columns
    assert not any(name == "updated_date" for name, _ in landed.columns)


def test_days_without_records_get_an_empty_file_so_a_rerun_clears_moved_records(lake):
    day = date(2026, 3, 1)
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [day])
    landed = land(lake, [], [day])
    assert landed.rows_by_day == {day: 0}
    assert read(lake, lake.partition_file("things", day)) == []


def test_rerunning_a_partition_replaces_exactly_that_partition(lake):
    land(
        lake,
        [thing("a", "2026-03-01T10:00:00Z"), thing("b", "2026-03-02T10:00:00Z")],
        [date(2026, 3, 1), date(2026, 3, 2)],
    )
    first = content(lake, lake.partition_file("things", date(2026, 3, 1)))
    land(lake, [thing("b", "2026-03-02T10:00:00Z", qty=9)], [date(2026, 3, 2)])
    assert content(lake, lake.partition_file("things", date(2026, 3, 1))) == first
    assert read(lake, lake.partition_file("things", date(2026, 3, 2))) == [("b", 9)]


def test_same_input_gives_identical_rows(lake):
    records = [thing(str(i), f"2026-03-01T{i % 24:02d}:00:00Z", qty=i) for i in range(50)]
    land(lake, records, [date(2026, 3, 1)])
    before = content(lake, lake.partition_file("things", date(2026, 3, 1)))
    land(lake, list(reversed(records)), [date(2026, 3, 1)])
    assert content(lake, lake.partition_file("things", date(2026, 3, 1))) == before


def test_repeated_versions_are_kept_once_and_distinct_versions_all_kept(lake):
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


def test_values_that_do_not_cast_stay_in_raw(lake):
    land(lake, [thing("a", "2026-03-01T10:00:00Z", qty="two")], [date(2026, 3, 1)])
    path = lake.partition_file("things", date(2026, 3, 1))
    with lake.connect() as con:
        row = con.execute("select qty, _raw ->> '$.qty' from read_parquet(?)", [path]).fetchone()
    assert row == (None, "two")


def test_records_outside_the_partitions_are_refused_and_nothing_is_published(lake):
    with pytest.raises(
        ValueError, match=r"things: records updated on \[datetime.date\(2026, 3, 9\)\]"
    ):
        land(lake, [thing("a", "2026-03-09T10:00:00Z")], [date(2026, 3, 1)])
    assert not lake.exists(lake.partition_file("things", date(2026, 3, 1)))


def test_leftovers_of_a_killed_write_are_invisible_and_cleaned_up(tmp_path):
    """A folder's publication writes a scratch file first (a bucket's upload has none to leave)."""
    lake = Lake(tmp_path)
    final = Path(lake.partition_file("things", date(2026, 3, 1)))
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
    assert read(lake, str(final)) == [("a", 1)]


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


def test_staging_file_is_removed_after_use(lake):
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [date(2026, 3, 1)])
    assert list(lake.staging_dir().glob("*.ndjson")) == []


def _publish_repeatedly(lake: Lake, qty: int) -> None:
    for _ in range(15):
        land(lake, [thing(str(i), "2026-03-01T10:00:00Z", qty=qty) for i in range(200)], [DAY])


def test_processes_publishing_the_same_partition_at_once_all_succeed(lake):
    """A sensor's run and a manual run may land the same day together: each publish is whole."""
    # Not multiprocessing.Pool: its terminate() can race its own worker refill and then wait forever on
    # a fresh worker that ignores SIGTERM (as pytest-xdist's workers, and so their children, do).
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as pool:
        list(pool.map(_publish_repeatedly, [lake] * 3, (1, 2, 3)))
    rows = read(lake, lake.partition_file("things", DAY))
    assert len(rows) == 200
    assert len({qty for _, qty in rows}) == 1, "the file must come from one publish, not a mix"
    assert lake.partition_files("things") == [lake.partition_file("things", DAY)]


def test_a_lake_connection_reaches_nothing_beside_the_lake(lake, tmp_path):
    """A crafted path in a check's SQL cannot read another prefix of the bucket, a sibling folder or a
    file of the host."""
    land(lake, [thing("a", "2026-03-01T10:00:00Z")], [DAY])
    beside = lake.url + "-other/raw/things/updated_date=2026-03-01/data.parquet"
    above = lake.url.rsplit("/", 1)[0] + "/secrets.parquet"
    with lake.connect() as con:
        assert con.execute(
            "select count(*) from read_parquet(?)", [lake.table_glob("things")]
        ).fetchone() == (1,)
        for foreign in (beside, above, "/etc/passwd"):
            with pytest.raises(duckdb.PermissionException, match="Cannot access file"):
                con.execute("select * from read_blob(?)", [foreign]).fetchall()


RICH = RawTable(
    "rich",
    projection="""
        json ->> '$.id' as id,
        cast(json ->> '$.updated' as timestamptz) as updated_at,
        try_cast(json ->> '$.amount' as decimal(18, 2)) as amount,
        cast(json ->> '$.due' as date) as due_date,
        from_json(json -> '$.lines', '[{"sku": "VARCHAR", "qty": "DOUBLE"}]') as lines,
        list_filter([case when json ->> '$.amount' is not null
                     and try_cast(json ->> '$.amount' as decimal(18, 2)) is null
                     then 'amount' end]::varchar[], lambda x: x is not null) as _uncastable,
        json as _raw
    """,
)


def test_day_files_hold_what_one_copy_per_day_wrote_type_for_type_in_order(tmp_path):
    """The days of a range are written in one pass through Arrow; each file must read back exactly as
    DuckDB's own `COPY` of that day wrote it before (types, JSON included, values and order)."""
    lake = Lake(tmp_path / "lake")
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(5)]
    records = [
        {
            "id": f"r{i % 40}",
            "updated": f"2026-03-0{1 + i % 4}T{(i * 7) % 24:02d}:{i % 60:02d}:00Z",
            "amount": "12.5" if i % 9 else "n/a",
            "due": "2026-04-01",
            "lines": [{"sku": f"SKU-{j}", "qty": j / 2} for j in range(i % 3)],
            "note": "é" * (i % 5),
        }
        for i in range(400)
    ]
    with lake.open_staging(RICH.name) as staging:
        staging.append(records)
        staging.finish()
        lake.publish_days(RICH, staging, days, EXTRACTED_AT)
        reference = tmp_path / "lake" / "reference"  # where the lake's connection may write
        with lake.connect() as con:
            con.execute(
                "create temp table landed as select *, cast(updated_at as date) as updated_date, "
                f"?::timestamptz as _extracted_at from (select {RICH.projection} from "
                f"read_json_objects('{staging.path}', format = 'newline_delimited')) "
                "qualify row_number() over (partition by id, updated_at) = 1",
                [EXTRACTED_AT],
            )
            for day in days:
                (reference / day.isoformat()).mkdir(parents=True)
                con.execute(
                    "copy (select * exclude (updated_date) from landed where updated_date = ? "
                    f"order by updated_at, id) to '{reference / day.isoformat() / 'data.parquet'}' "
                    "(format parquet, compression zstd)",
                    [day],
                )
    with duckdb.connect() as con:
        for day in days:
            published = (
                f"read_parquet('{lake.partition_file('rich', day)}', hive_partitioning=false)"
            )
            expected = f"read_parquet('{reference / day.isoformat() / 'data.parquet'}')"
            assert (
                con.execute(f"describe select * from {published}").fetchall()
                == con.execute(f"describe select * from {expected}").fetchall()
            )
            assert (
                con.execute(f"select * from {published}").fetchall()
                == con.execute(f"select * from {expected}").fetchall()
            ), day
        described = con.execute(
            f"describe select * from read_parquet('{lake.partition_file('rich', days[0])}')"
        ).fetchall()
    assert ("_raw", "JSON") in [(name, kind) for name, kind, *_ in described]
    assert any(kind == "STRUCT(sku VARCHAR, qty DOUBLE)[]" for _, kind, *_ in described)


def test_records_the_fast_json_writer_refuses_are_staged_all_the_same(lake):
    """orjson stages records; an integer beyond 64 bits or a lone surrogate (both valid in a parsed
    response) fall back to the standard library instead of failing the run, the surrogate replaced."""
    records = [
        thing("big", "2026-03-01T10:00:00Z", qty=2**70),
        {**thing("odd", "2026-03-01T11:00:00Z"), "note": "half an emoji \ud83d"},
        thing("plain", "2026-03-01T12:00:00Z", qty="ünïcode"),
    ]
    landed = land(lake, records, [DAY])
    assert landed.rows_by_day == {DAY: 3}
    with lake.connect() as con:
        raw = dict(
            con.execute(
                "select id, _raw::varchar from read_parquet(?)",
                [lake.partition_file("things", DAY)],
            ).fetchall()
        )
    assert str(2**70) in raw["big"]
    assert "ünïcode" in raw["plain"]
    assert "half an emoji \ufffd" in raw["odd"]


def test_a_day_that_cannot_be_written_fails_naming_it_and_the_others_land_whole(tmp_path):
    """Days are published on several threads: one day's failure is raised with its file, every other
    day is whole or untouched, and no scratch file is left behind."""
    lake = Lake(tmp_path / "lake")
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(6)]
    blocked = Path(lake.partition_file("things", days[2])).parent
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the day's folder should be")
    records = [thing(f"r{n}", f"{day}T10:00:00Z") for n, day in enumerate(days)]
    with pytest.raises(LakeWriteError, match=r"updated_date=2026-03-03"):
        land(lake, records, days)
    for day in days[:2] + days[3:]:
        assert [row[0] for row in read(lake, lake.partition_file("things", day))] == [
            f"r{days.index(day)}"
        ]
    assert not list((tmp_path / "lake").rglob("*.tmp-*"))


def test_rows_of_a_part_not_being_written_are_refused_and_the_parts_before_land_whole(tmp_path):
    con = duckdb.connect(config={"arrow_lossless_conversion": True})
    con.execute(
        "create table rows as select (date '2026-03-01' + (i % 3)::int) as day, i "
        "from range(30) t(i)"
    )
    finals = {
        date(2026, 3, 1) + timedelta(days=n): tmp_path / f"{n}" / "data.parquet" for n in range(2)
    }
    with pytest.raises(ValueError, match="2026-03-03, which is not one of the parts"):
        publish_parquet_parts(con, "rows", "day", "i", finals)
    for n, final in enumerate(finals.values()):
        assert con.execute(f"select list(i) from '{final}'").fetchone()[0] == list(range(n, 30, 3))
    assert not list(tmp_path.rglob("*.tmp-*"))
