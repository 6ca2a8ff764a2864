"""How a source's JSON records become typed columns in the lake, as one DuckDB SELECT list.

Each typed column is cast with `try_cast`, so one bad value never fails a whole extract; the fields whose
value was present but did not cast are listed per record in `_uncastable` (as source paths, e.g.
`Line[].SalesItemLineDetail.Qty`), so staging can keep those records out and a check can count them
rather than let a null pass for a missing value. `_raw` keeps the record exactly as the API sent it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    path: str  # JSONPath inside the record (or the line), e.g. '$.TotalAmt' or '$."updated-at"'
    cast: str | None = None  # a DuckDB type; None keeps the text
    strict: bool = False  # cast() instead of try_cast(): the record is unusable without this value

    def expression(self, document: str) -> str:
        text = f"{document} ->> '{self.path}'"
        if self.cast is None:
            return text
        return f"{'cast' if self.strict else 'try_cast'}({text} as {self.cast})"

    def failed(self, document: str, prefix: str) -> str | None:
        """SQL naming the source field when its value is present but does not cast, else null."""
        if self.cast is None or self.strict:
            return None
        text = f"{document} ->> '{self.path}'"
        return (
            f"case when {text} is not null and try_cast({text} as {self.cast}) is null "
            f"then '{prefix}{source_field(self.path)}' end"
        )


@dataclass(frozen=True)
class Lines:
    """A list of structs from an array of objects in the record (invoice lines, order lines)."""

    name: str
    path: str  # JSONPath of the array elements, e.g. '$.Line[*]'
    columns: Sequence[Column]
    where: str | None = None  # SQL over `line` selecting the elements to keep

    def loop(self) -> str:
        condition = f" if {self.where}" if self.where else ""
        return f"for line in json_extract(json, '{self.path}'){condition}"

    def expression(self) -> str:
        fields = ", ".join(f"{c.name} := {c.expression('line')}" for c in self.columns)
        return f"[struct_pack({fields}) {self.loop()}]"

    def failures(self) -> str | None:
        prefix = source_field(self.path.removesuffix("[*]")) + "[]."
        checks = [f for c in self.columns if (f := c.failed("line", prefix))]
        if not checks:
            return None
        return f"flatten([{_non_null_list(checks)} {self.loop()}])"


def source_field(path: str) -> str:
    """'$."ship-to-address".name' -> 'ship-to-address.name': how users see the field in the source."""
    return path.removeprefix("$.").replace('"', "")


def projection(columns: Sequence[Column], lines: Lines | None = None, extra: str = "") -> str:
    """The SELECT list over a relation with one JSON column named `json`."""
    selected = [f"{column.expression('json')} as {column.name}" for column in columns]
    if lines is not None:
        selected.append(f"{lines.expression()} as {lines.name}")
    if extra:
        selected.append(extra)
    failures = [_non_null_list([f for c in columns if (f := c.failed("json", ""))])]
    if lines is not None and (line_failures := lines.failures()):
        failures.append(line_failures)
    uncastable = failures[0] if len(failures) == 1 else f"list_concat({', '.join(failures)})"
    selected += [f"{uncastable} as _uncastable", "json as _raw"]
    return ",\n".join(selected)


def _non_null_list(items: list[str]) -> str:
    return f"list_filter([{', '.join(items)}]::varchar[], lambda x: x is not null)"
