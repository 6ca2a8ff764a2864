"""The lake: Parquet files that hand data between steps, written so that readers never see half a partition.

Layout: `<lake>/raw/<table>/updated_date=<YYYY-MM-DD>/data.parquet`, one file per day of last update (hive
style, so dbt and DuckDB read the whole table with one glob), in a local folder or a bucket prefix
(`unified_assets.places`). A day's file is published whole (renamed into place after an fsync in a folder,
one completed upload in a bucket), so a partition is either the complete previous version, the complete
new version, or absent. A run that covers several days publishes each day
on its own; if it dies half-way, the days it did not reach keep their previous files and a re-run
converges.

Records are streamed to a newline-delimited JSON staging file page by page, so memory does not grow with
the size of a source; DuckDB (in memory, spilling to disk) reads the staging file into typed columns, and
Arrow writes each day's Parquet file from them (`Place.publish_parquet_parts`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import orjson

from unified_assets.places import LakeWriteError, LocalFolder, Place, remove_orphans

PARTITION_FILE = "data.parquet"
DUCKDB_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class RawTable:
    """How one source's records become typed columns.

    `projection` is a DuckDB SELECT list over a relation with one JSON column named `json` (one record each);
    it must produce `id` (VARCHAR) and `updated_at` (TIMESTAMPTZ) and should keep `json AS _raw`, so that a
    field the projection does not know (schema drift) is never lost. An `_uncastable` list of field names
    per record (see `unified_assets.sources.projection`) is counted in what landed.
    """

    name: str
    projection: str


@dataclass
class LandedPartitions:
    rows_by_day: dict[date, int]
    duplicates_dropped: int
    newest_update: datetime | None
    columns: list[tuple[str, str]]
    preview: list[dict[str, Any]]
    files: dict[date, str]
    uncastable: dict[str, int]  # values present in the source that did not cast, by source field


class Lake:
    """The raw partitions of every source under one place: a local folder (`Lake(path)`) or a bucket
    prefix (`Lake(S3Prefix(...), scratch_dir=...)`). Records are staged and typed in `scratch_dir`, a
    folder of this host (default: `_staging` in the lake's folder)."""

    def __init__(self, place: Place | Path | str, scratch_dir: Path | None = None):
        if isinstance(place, (str, Path)):
            place = LocalFolder(Path(place))
            scratch_dir = scratch_dir or place.path / "_staging"
        if scratch_dir is None:
            raise ValueError("a lake in a bucket needs a local scratch folder")
        self.place = place
        self.scratch_dir = Path(scratch_dir)

    @property
    def url(self) -> str:
        return self.place.url

    def partition_file(self, table: str, day: date) -> str:
        return self.place.join("raw", table, f"updated_date={day.isoformat()}", PARTITION_FILE)

    def partition_files(self, table: str) -> list[str]:
        """Every published day file of a table, oldest day first."""
        return self.place.glob(f"raw/{table}/*/{PARTITION_FILE}")

    def table_glob(self, table: str) -> str:
        return self.place.join("raw", table, "*", PARTITION_FILE)

    def exists(self, location: str) -> bool:
        return self.place.exists(location)

    def connect(self, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB that reaches the lake and its scratch folder, nothing else."""
        return self.place.connect(also_allowed=[self.scratch_dir], config=config)

    def staging_dir(self) -> Path:
        return self.scratch_dir

    def open_staging(self, table: str) -> StagingFile:
        """A private NDJSON file to stream one run's records into; removed when closed."""
        directory = self.staging_dir()
        directory.mkdir(parents=True, exist_ok=True)
        remove_orphans(directory.glob("*.ndjson"))
        return StagingFile(directory / f"{table}.{os.getpid()}.{uuid.uuid4().hex}.ndjson")

    def publish_days(
        self,
        table: RawTable,
        staging: StagingFile,
        days: Iterable[date],
        extracted_at: datetime,
        preview_rows: int = 5,
    ) -> LandedPartitions:
        """Write one Parquet file per day (days without records get an empty file, so a re-run of a
        partition whose records all moved on replaces the old rows) and return what landed."""
        days = sorted(set(days))
        with self._scratch_duckdb() as con:
            received = _load_staging(con, table, staging, extracted_at)
            unexpected = con.execute(
                "select distinct updated_date from landed where updated_date not in "
                "(select unnest(?::date[]))",
                [days],
            ).fetchall()
            if unexpected:
                raise ValueError(
                    f"{table.name}: records updated on {sorted(d for (d,) in unexpected)} fall outside "
                    f"the partitions being written ({days[0]}..{days[-1]})"
                )
            files = {day: self.partition_file(table.name, day) for day in days}
            self.place.publish_parquet_parts(con, "landed", "updated_date", "updated_at, id", files)
            columns = _columns(con)
            return LandedPartitions(
                rows_by_day=_rows_by_day(con, days),
                duplicates_dropped=received
                - con.execute("select count(*) from landed").fetchone()[0],
                newest_update=con.execute("select max(updated_at) from landed").fetchone()[0],
                columns=columns,
                preview=_preview(con, preview_rows),
                files=files,
                uncastable=_uncastable(con) if ("_uncastable", "VARCHAR[]") in columns else {},
            )

    @contextmanager
    def _scratch_duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB that spills to the scratch folder instead of growing without bound, and
        reaches nothing but the lake and its scratch folder."""
        spill = self.scratch_dir / "duckdb_spill"
        spill.mkdir(parents=True, exist_ok=True)
        con = self.connect(
            config={
                "memory_limit": DUCKDB_MEMORY_LIMIT,
                "temp_directory": str(spill),
                # Rows are ordered where it matters (each day file by updated_at, id); not buffering
                # them in arrival order lets large loads stream.
                "preserve_insertion_order": False,
                # A JSON column (`_raw`) handed to the Parquet writer through Arrow stays JSON.
                "arrow_lossless_conversion": True,
            },
        )
        try:
            yield con
        finally:
            con.close()


class StagingFile:
    """Newline-delimited JSON, one record a line, appended page by page."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._handle: BinaryIO | None = path.open("wb")
        except OSError as error:
            raise LakeWriteError(path, error) from error
        self.records = 0

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        assert self._handle is not None, "staging file already closed"
        try:
            for record in records:
                self._handle.write(_ndjson_line(record))
                self.records += 1
        except OSError as error:
            raise LakeWriteError(self.path, error) from error

    def finish(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                handle.close()  # flushes what is buffered: the write that fails may be this one
            except OSError as error:
                raise LakeWriteError(self.path, error) from error

    def __enter__(self) -> StagingFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.finish()
        finally:
            self.path.unlink(missing_ok=True)


def _ndjson_line(record: dict[str, Any]) -> bytes:
    """One record as a line of UTF-8 JSON. orjson writes it about 35 times faster than the standard
    library; what it refuses the standard library writes: an integer beyond 64 bits as it is, a lone
    surrogate (half an emoji cut by the source, valid in a parsed response but in no UTF-8 file, which
    DuckDB would refuse) as U+FFFD, the replacement character."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        return line.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode() + b"\n"


def _load_staging(
    con: duckdb.DuckDBPyConnection, table: RawTable, staging: StagingFile, extracted_at: datetime
) -> int:
    """Project the staged records into a temp table, keeping one row per (id, updated_at); returns how
    many records were staged. One table, not a projected copy and a deduplicated one: at the benchmark
    world's size two copies of invoices in three landing connections at once went past 2 GB."""
    con.execute(
        "create temp table landed as "
        "select *, cast(updated_at as date) as updated_date, ?::timestamptz as _extracted_at "
        f"from (select {table.projection} "
        f"from read_json_objects({_sql_string(staging.path)}, format = 'newline_delimited')) "
        "qualify row_number() over (partition by id, updated_at) = 1",
        [extracted_at],
    )
    return staging.records


def _rows_by_day(con: duckdb.DuckDBPyConnection, days: list[date]) -> dict[date, int]:
    counts = dict(con.execute("select updated_date, count(*) from landed group by all").fetchall())
    return {day: counts.get(day, 0) for day in days}


def _columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    described = con.execute("describe select * exclude (updated_date) from landed").fetchall()
    return [(name, column_type) for name, column_type, *_ in described]


def _uncastable(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = con.execute(
        "select field, count(*) from (select unnest(_uncastable) as field from landed) "
        "group by field order by field"
    ).fetchall()
    return dict(counts)


def _preview(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    cursor = con.execute(
        "select columns(lambda c: c not in ('updated_date', '_raw', '_uncastable')) from landed "
        "order by updated_at desc, id limit ?",
        [limit],
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
