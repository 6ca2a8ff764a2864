"""The fields an API sent in one extract, kept as a materialization's metadata and read back by the
source-schema check: one codec, so what the extract writes and what the check reads cannot drift apart."""

from __future__ import annotations

from dagster import TableColumn, TableColumnConstraints, TableSchema

from unified_assets.quality import FieldCensus, FieldSummary, SourceFields

SOURCE_FIELDS = "source_fields"
# How many records the fields were counted over (the run's, on its newest day's materialization).
SOURCE_FIELDS_RECORDS = "source_fields_records"
SHARE_TAG = "share_of_records"


def source_fields_schema(census: FieldCensus) -> TableSchema:
    """The fields the API sent in this extract, as a table a data engineer can read in the UI; the
    source-schema check compares it with earlier extracts. Our typed columns are fixed by code, so
    `dagster/column_schema` cannot show that a vendor renamed or retyped a field: this can."""
    return TableSchema(
        columns=[
            TableColumn(
                summary.path,
                summary.kind,
                description=f"in {summary.share:.1%} of records",
                constraints=TableColumnConstraints(nullable=not summary.always_present),
                tags={SHARE_TAG: f"{summary.share:.6f}"},
            )
            for summary in census.fields()
        ]
    )


def source_fields_from_schema(schema: TableSchema, records: int | None) -> SourceFields:
    """The inverse of `source_fields_schema`, for an extract of `records` records (None: not recorded)."""
    return SourceFields(
        records,
        [
            FieldSummary(
                column.name,
                column.type,
                always_present=not column.constraints.nullable,
                share=float(share) if (share := column.tags.get(SHARE_TAG)) else None,
            )
            for column in schema.columns
        ],
    )
