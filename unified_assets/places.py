"""Where the platform's files live: a folder on this host (`local` profile) or a prefix of an S3 bucket
(`cluster` profile), behind one small interface the lake is written against.

Both give whole-file publication: a reader sees the previous file or the new one, never part of one. A
folder gets it from a rename after an fsync (`publish_parquet`); a bucket gets it
from S3 itself, which makes an object visible only once its upload completes (DuckDB's `COPY ... TO
's3://...'` is one multipart upload). A killed writer leaves, at worst, an incomplete multipart upload,
which no reader can see and a bucket lifecycle rule removes: no scratch file, so nothing to clean by
process id.

Every DuckDB connection a place opens is confined to it (`unified_assets.confined_duckdb`): a bucket
connection reaches only its own prefix (and the local scratch folders it is given), with the bucket's
credentials in a DuckDB secret scoped to that prefix.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import duckdb

from unified_assets.confined_duckdb import confine, confined_duckdb
from unified_assets.duckdb_extensions import connection_settings
from unified_assets.durable import fsync_directory, fsync_file, process_alive

if TYPE_CHECKING:  # pyarrow is imported by the write that needs it, not by every step process
    import pyarrow as pa
    import pyarrow.parquet as pq


class LakeWriteError(Exception):
    """A file of the lake could not be written: a full disk, a file-size limit, a permission. Names the
    file; what was published before it stays whole, and nothing half-written is left at a published name."""

    def __init__(self, path: Path | str, cause: BaseException):
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        super().__init__(f"could not write {path}: {reason}")
        self.path = path


def publish_parquet(
    con: duckdb.DuckDBPyConnection, query: str, parameters: list[Any], final: Path
) -> None:
    """Write the result of `query` to `final` as one Parquet file that readers see whole or not at all:
    written beside it under a name that carries this process's id, flushed, renamed into place, the
    folder flushed. Scratch files of writers that died are removed first. Every Parquet file the platform
    publishes (lake days and the tables handed between steps) is written here."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(final.parent.glob(f"{final.name}.tmp-*"))
    temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
    try:
        con.execute(
            f"copy ({query}) to {_literal(str(temporary))} (format parquet, compression zstd)",
            parameters,
        )
        fsync_file(temporary)
        os.replace(temporary, final)
    except (OSError, duckdb.IOException) as error:
        temporary.unlink(missing_ok=True)
        raise LakeWriteError(final, error) from error
    fsync_directory(final.parent)


# DuckDB's own row-group size, so a file written through Arrow is read back in the same units; rows
# cross from DuckDB in smaller batches, so at most about one row group is held in memory.
PARQUET_ROW_GROUP_ROWS = 122_880
ARROW_BATCH_ROWS = 8_192
# Finished parts are written, flushed and renamed on a few threads (compression and fsync release the
# GIL), so one part's fsync waits beside the next one's writing; at most twice as many wait their turn.
PUBLISHING_THREADS = 4


def publish_parquet_parts(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    part_column: str,
    order_by: str,
    finals: Mapping[Any, Path],
) -> None:
    """Write the rows of `relation` as one Parquet file per value of `part_column` (the column itself
    left out, the rows ordered by `order_by`), each published as `publish_parquet` publishes one file,
    in one pass over the rows: a range run's days cost one query instead of one `COPY` each (DuckDB's
    own `PARTITION_BY` does not keep the order within a file). A value of `finals` that has no rows
    gets an empty file.

    `con` must export to Arrow losslessly (`arrow_lossless_conversion`), so a JSON column stays JSON in
    the file. If a write fails, the parts published before it are whole and the rest untouched."""
    column = _identifier(part_column)
    query = f"select * from {relation} order by {column}, {order_by}"
    reader = con.execute(query).to_arrow_reader(ARROW_BATCH_ROWS)
    key_index = reader.schema.get_field_index(part_column)
    schema = reader.schema.remove(key_index)
    part: _ParquetPart | None = None
    with _Publisher() as publisher:
        try:
            for batch in reader:
                rows = batch.drop_columns([part_column])
                for key, start, length in _runs(batch.column(key_index)):
                    if part is None or part.key != key:
                        if part is not None:
                            finished, part = part, None  # the publisher's now, not to discard here
                            publisher.submit(finished)
                        part = _ParquetPart(key, _final_for(key, finals, publisher.keys), schema)
                    part.write(rows.slice(start, length))
            if part is not None:
                finished, part = part, None
                publisher.submit(finished)
            for key in finals.keys() - publisher.keys:
                publisher.submit(_ParquetPart(key, finals[key], schema))
        except duckdb.IOException as error:
            raise LakeWriteError(part.final if part else relation, error) from error
        finally:
            if part is not None:
                part.discard()


def _runs(keys: pa.Array) -> Iterable[tuple[Any, int, int]]:
    """(value, first row, row count) of each run of equal values in `keys`."""
    import pyarrow.compute as pc

    encoded = pc.run_end_encode(keys)
    start = 0
    for end, value in zip(encoded.run_ends.to_pylist(), encoded.values.to_pylist(), strict=True):
        yield value, start, end - start
        start = end


def _final_for(key: Any, finals: Mapping[Any, Path], submitted: set[Any]) -> Path:
    if key in submitted:
        raise ValueError(f"the rows of {key} are not together")
    if key not in finals:
        raise ValueError(f"rows for {key}, which is not one of the parts being written")
    return finals[key]


class _ParquetPart:
    """One part's file, written beside its final name and renamed into place whole. Small parts are
    only buffered until published; a part larger than a row group is written as its rows come."""

    def __init__(self, key: Any, final: Path, schema: pa.Schema):
        self.key = key
        self.final = final
        self.schema = schema
        self.temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
        self._buffered: list[pa.RecordBatch] = []
        self._writer: pq.ParquetWriter | None = None

    def write(self, rows: pa.RecordBatch) -> None:
        self._buffered.append(rows)
        if sum(batch.num_rows for batch in self._buffered) >= PARQUET_ROW_GROUP_ROWS:
            try:
                self._write_buffered()
            except OSError as error:
                self.discard()
                raise LakeWriteError(self.final, error) from error

    def publish(self) -> None:
        """Write what is buffered, flush the file to disk, rename it into place, flush the folder."""
        try:
            self._write_buffered()
            self._open().close()
            fsync_file(self.temporary)
            os.replace(self.temporary, self.final)
        except OSError as error:
            self.discard()
            raise LakeWriteError(self.final, error) from error
        fsync_directory(self.final.parent)

    def discard(self) -> None:
        """Remove the scratch file; what made the write fail may make this fail too."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
        with contextlib.suppress(OSError):
            self.temporary.unlink(missing_ok=True)

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            import pyarrow.parquet as pq

            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_orphans(self.final.parent.glob(f"{self.final.name}.tmp-*"))
            self._writer = pq.ParquetWriter(self.temporary, self.schema, compression="zstd")
        return self._writer

    def _write_buffered(self) -> None:
        if self._buffered:
            import pyarrow as pa

            rows = pa.Table.from_batches(self._buffered)
            self._buffered = []
            self._open().write_table(rows, row_group_size=PARQUET_ROW_GROUP_ROWS)


class _Publisher:
    """Publishes finished parts on a few threads; the first failure is raised (after the parts
    already handed over are done, each whole or discarded)."""

    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self._pool = ThreadPoolExecutor(PUBLISHING_THREADS, thread_name_prefix="publish-parquet")
        self._pending: deque[Future[None]] = deque()

    def submit(self, part: _ParquetPart) -> None:
        self.keys.add(part.key)
        self._pending.append(self._pool.submit(part.publish))
        while len(self._pending) > 2 * PUBLISHING_THREADS:
            self._pending.popleft().result()

    def __enter__(self) -> _Publisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        failures: list[Exception] = []
        for pending in self._pending:
            try:
                pending.result()
            except Exception as error:  # every part is waited for; the first failure is raised
                failures.append(error)
        self._pool.shutdown()
        if failures and exc_type is None:
            raise failures[0]


def remove_orphans(paths: Iterable[Path]) -> None:
    """Remove files left by processes that no longer exist (a killed run); another live run's files,
    which may be being written right now, are left alone. The writer's pid is the first run of digits
    after the file's fixed prefix (`<table>.<pid>.<uuid>.ndjson`, `<name>.parquet.tmp-<pid>-<uuid>`)."""
    for path in paths:
        match = _WRITER_PID.search(path.name)
        if match and not process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)


_WRITER_PID = re.compile(r"(?:\.tmp-|^[a-z_]+\.)(\d+)[.-]")


class Place(Protocol):
    url: str

    def join(self, *parts: str) -> str:
        """The location of a file under this place."""

    def glob(self, pattern: str) -> list[str]:
        """Files under this place matching `pattern` (relative, DuckDB glob syntax), sorted."""

    def exists(self, location: str) -> bool: ...

    def connect(
        self, *, also_allowed: Iterable[Path] = (), config: Mapping[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB reaching only this place and the local folders `also_allowed`."""

    def publish_parquet(
        self, con: duckdb.DuckDBPyConnection, query: str, parameters: list[Any], final: str
    ) -> None:
        """Write the result of `query` to `final` as one Parquet file readers see whole or not at all;
        `con` is a connection of this place's."""

    def publish_parquet_parts(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        part_column: str,
        order_by: str,
        finals: Mapping[Any, str],
    ) -> None:
        """The rows of `relation` as one such file per value of `part_column` (the column left out),
        each ordered by `order_by`; a value of `finals` without rows gets an empty file."""


class LocalFolder:
    """A folder on this host."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.url = str(self.path)

    def join(self, *parts: str) -> str:
        return str(self.path.joinpath(*parts))

    def glob(self, pattern: str) -> list[str]:
        return sorted(str(path) for path in self.path.glob(pattern))

    def exists(self, location: str) -> bool:
        return Path(location).exists()

    def connect(
        self, *, also_allowed: Iterable[Path] = (), config: Mapping[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        return confined_duckdb(allowed=[self.path, *also_allowed], config=config)

    def publish_parquet(
        self, con: duckdb.DuckDBPyConnection, query: str, parameters: list[Any], final: str
    ) -> None:
        publish_parquet(con, query, parameters, Path(final))

    def publish_parquet_parts(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        part_column: str,
        order_by: str,
        finals: Mapping[Any, str],
    ) -> None:
        paths = {key: Path(final) for key, final in finals.items()}
        publish_parquet_parts(con, relation, part_column, order_by, paths)


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible endpoint. `endpoint`: host[:port] of the S3 API (empty: AWS's own);
    `url_style`: `path` for most S3-compatible servers, `vhost` for AWS."""

    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    endpoint: str = ""
    use_ssl: bool = True
    url_style: str = "vhost"

    @classmethod
    def from_endpoint_url(
        cls, endpoint_url: str, access_key_id: str, secret_access_key: str, region: str
    ) -> S3Settings:
        """From an endpoint written as a URL (`http://127.0.0.1:9000`): the scheme says whether to use
        TLS; a non-AWS host is addressed path-style."""
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"an S3 endpoint is a URL such as https://s3.example.com, not {endpoint_url!r}"
            )
        return cls(
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            region=region,
            endpoint=parts.netloc,
            use_ssl=parts.scheme == "https",
            url_style="vhost" if parts.netloc.endswith("amazonaws.com") else "path",
        )


class S3Prefix:
    """A prefix of an S3 bucket, `s3://bucket/some/prefix`."""

    def __init__(self, url: str, settings: S3Settings, extensions_dir: Path):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"a bucket location is s3://bucket/prefix, not {url!r}")
        self.url = url.rstrip("/")
        self.settings = settings
        self.extensions_dir = Path(extensions_dir)
        self._boto3_client: Any = None

    def join(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    def glob(self, pattern: str) -> list[str]:
        with self.connect() as con:
            rows = con.execute("select file from glob(?)", [self.join(pattern)]).fetchall()
        return sorted(file for (file,) in rows)

    def exists(self, location: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client().head_object(Bucket=self.bucket, Key=self._key(location))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    # Whole objects, for what is not a table (a model's files, an alert, a webhook delivery): S3 makes an
    # object visible only once its upload completes, so a reader gets all of one or none of it.

    def put_bytes(self, location: str, payload: bytes) -> None:
        self._client().put_object(Bucket=self.bucket, Key=self._key(location), Body=payload)

    def get_bytes(self, location: str) -> bytes:
        """The object's content; FileNotFoundError naming the location when there is none."""
        client = self._client()
        try:
            return client.get_object(Bucket=self.bucket, Key=self._key(location))["Body"].read()
        except client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"{location} does not exist") from None

    def list_under(self, location: str) -> list[str]:
        """Every object under the folder `location` (one of this prefix's), as locations, sorted."""
        folder = self._key(location.rstrip("/")) + "/"
        pages = (
            self._client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=folder)
        )
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(f"s3://{self.bucket}/{key}" for key in keys)

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    def _key(self, location: str) -> str:
        if location != self.url and not location.startswith(self.url + "/"):
            raise ValueError(f"{location} is not under {self.url}")
        return location.removeprefix(f"s3://{self.bucket}/")

    def _client(self) -> Any:
        """A boto3 client (the cluster extra's dependency, loaded only here), made once per prefix."""
        if self._boto3_client is None:
            self._boto3_client = self._new_client()
        return self._boto3_client

    def _new_client(self) -> Any:
        import boto3
        from botocore.config import Config

        s = self.settings
        scheme = "https" if s.use_ssl else "http"
        return boto3.client(
            "s3",
            endpoint_url=f"{scheme}://{s.endpoint}" if s.endpoint else None,
            region_name=s.region,
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            config=Config(
                s3={"addressing_style": "path" if s.url_style == "path" else "virtual"},
                retries={"mode": "standard", "max_attempts": 5},
            ),
        )

    def connect(
        self, *, also_allowed: Iterable[Path] = (), config: Mapping[str, Any] | None = None
    ) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(config={**connection_settings(self.extensions_dir), **(config or {})})
        try:
            self.add_secret(con)
            confine(con, [*also_allowed], remote=[self.url])
        except BaseException:
            con.close()
            raise
        return con

    def add_secret(self, con: duckdb.DuckDBPyConnection) -> None:
        """Give `con` this prefix's credentials, for this prefix only."""
        s = self.settings
        options = {
            "key_id": s.access_key_id,
            "secret": s.secret_access_key,
            "region": s.region,
            "url_style": s.url_style,
            "scope": self.url + "/",
        }
        if s.endpoint:
            options["endpoint"] = s.endpoint
        # CREATE SECRET takes literals only; quotes are doubled, and DuckDB never shows a secret's value.
        listed = ", ".join(f"{key} {_literal(value)}" for key, value in options.items())
        con.execute(
            f"create temporary secret place (type s3, use_ssl {str(s.use_ssl).lower()}, {listed})"
        )

    def publish_parquet(
        self, con: duckdb.DuckDBPyConnection, query: str, parameters: list[Any], final: str
    ) -> None:
        try:
            con.execute(
                f"copy ({query}) to {_literal(final)} (format parquet, compression zstd)",
                parameters,
            )
        except (duckdb.IOException, duckdb.HTTPException) as error:
            raise LakeWriteError(final, error) from error

    def publish_parquet_parts(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        part_column: str,
        order_by: str,
        finals: Mapping[Any, str],
    ) -> None:
        """One `COPY` (one upload, visible whole) per part: an object store has no rename to batch."""
        column = _identifier(part_column)
        for key, final in finals.items():
            self.publish_parquet(
                con,
                f"select * exclude ({column}) from {relation} where {column} = ? order by {order_by}",
                [key],
                final,
            )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
