"""Typed columns from JSON records: a value that does not cast is named, never silently null."""

from __future__ import annotations

import json

import duckdb
import pytest

from unified_assets.sources import coupa, quickbooks, zendesk
from unified_assets.sources.projection import Column, Lines, projection, source_field


def project(columns: str, record: dict) -> dict:
    with duckdb.connect() as con:
        cursor = con.execute(
            f"select {columns} from (select ?::json as json)", [json.dumps(record)]
        )
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


ORDER = projection(
    [Column("id", "$.id"), Column("total", "$.total", "double")],
    Lines(
        "lines",
        '$."order-lines"[*]',
        [Column("qty", "$.qty", "integer")],
        where="line ->> '$.keep'",
    ),
)


def test_values_that_cast_and_missing_values_are_not_uncastable():
    row = project(ORDER, {"id": "1", "total": "12.5", "order-lines": [{"qty": 3, "keep": True}]})
    assert row["total"] == 12.5 and row["lines"] == [{"qty": 3}]
    assert row["_uncastable"] == []
    assert project(ORDER, {"id": "2", "total": None})["_uncastable"] == []


def test_each_value_that_does_not_cast_is_named_by_its_source_field():
    record = {
        "id": "3",
        "total": "12,50",
        "order-lines": [
            {"qty": "two", "keep": True},
            {"qty": "x", "keep": False},
            {"qty": "3 pcs", "keep": True},
        ],
    }
    row = project(ORDER, record)
    assert row["total"] is None
    assert row["_uncastable"] == ["total", "order-lines[].qty", "order-lines[].qty"]
    assert json.loads(row["_raw"]) == record, "the original value is kept"


def test_a_strict_column_fails_loudly():
    strict = projection([Column("id", "$.id"), Column("at", "$.at", "timestamptz", strict=True)])
    with pytest.raises(duckdb.ConversionException):
        project(strict, {"id": "1", "at": "yesterday"})


def test_source_fields_read_as_the_vendor_spells_them():
    assert source_field('$."ship-to-address".name') == "ship-to-address.name"


@pytest.mark.parametrize(
    "columns", [quickbooks.RAW_COLUMNS, coupa.RAW_COLUMNS, zendesk.RAW_COLUMNS]
)
def test_every_source_projection_lists_uncastable_values_and_keeps_the_record(columns):
    row = project(
        columns,
        {"id": "1", "Id": "1", "updated_at": "2026-03-01T00:00:00Z"}
        | {
            "updated-at": "2026-03-01T00:00:00Z",
            "MetaData": {"LastUpdatedTime": "2026-03-01T00:00:00Z"},
        },
    )
    assert row["_uncastable"] == [] and row["_raw"] is not None
