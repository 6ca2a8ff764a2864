"""How tables, schemas, plots and lists read in the Dagster UI's metadata: one renderer for each, so every
asset's preview and report looks the same."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagster import MetadataValue, TableColumn, TableSchema

if TYPE_CHECKING:
    import pandas as pd

MAX_CELL = 40


def markdown_table(
    table: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    float_format: str = "",
    max_cell: int = MAX_CELL,
) -> str:
    """A markdown table of a frame or of rows (dicts with the same keys); long cells are cut, pipes and
    newlines escaped, numbers right-aligned. `float_format` (e.g. ".3f") formats the floats."""
    if isinstance(table, Sequence):
        columns = list(table[0]) if table else []
        rows: Iterable[Sequence[Any]] = [[row[name] for name in columns] for row in table]
    else:
        columns = [str(name) for name in table.columns]
        rows = table.itertuples(index=False)
    if not columns:
        return "_no rows_"

    def cell(value: Any) -> str:
        if isinstance(value, float) and float_format:
            return format(value, float_format)
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    body = [[cell(value) for value in row] for row in rows]
    if not body:
        return "_no rows_"
    numeric = [
        all(_is_number(row[index]) for row in body if row[index]) for index in range(len(columns))
    ]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "".join("---:|" if right else "---|" for right in numeric),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def frame_schema(frame: pd.DataFrame) -> TableSchema:
    """A frame's columns and types as the `dagster/column_schema` the UI shows."""
    return TableSchema(
        columns=[TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def png_markdown(png: bytes, alt: str) -> MetadataValue:
    """A picture inline in the metadata (the UI renders data URLs in markdown)."""
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def markdown_list(lines: Iterable[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) or "_none_"
