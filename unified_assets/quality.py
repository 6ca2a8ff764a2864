"""The statistics behind the data-quality checks on landed extracts: volume, drift and source schema.

No Dagster here: the checks in `unified_assets.checks` fetch history from the instance and the lake and
hand it to these functions, so the thresholds are testable and tunable on their own.

The rules are deliberately conservative. A data engineer reads every warning, so a check that cries wolf
on a quiet Sunday or a small sample is worse than none: volume is compared with the same weekday, small
counts must also be statistically far off, and drift needs both a significant and a material difference.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

import numpy as np

# --- volume ------------------------------------------------------------------------------------------

VOLUME_WEEKS = 8
VOLUME_MIN_SAMPLES = 3
COLLAPSE_RATIO = 0.3
SPIKE_RATIO = 3.0
VOLUME_SIGMAS = 3.0
MIN_COVERED = 0.25


def covered_fraction(day: date, observed_at: datetime) -> float:
    """How much of a day's window had passed when its partition was extracted (today's is partial)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=observed_at.tzinfo)
    elapsed = (observed_at - start) / timedelta(days=1)
    return min(max(elapsed, 0.0), 1.0)


# How far apart two extracts' ages may be for their counts to be compared (see `comparable_extracts`).
AGE_TOLERANCE = timedelta(days=2)


def extract_age(day: date, observed_at: datetime) -> timedelta:
    """How long after the end of its day a partition was extracted (zero for today's, still open)."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=observed_at.tzinfo)
    return max(observed_at - end, timedelta(0))


def comparable_extracts(current_age: timedelta, reference_age: timedelta) -> bool:
    """Whether a reference partition was extracted about as long after its day as the current one.

    A record lands in the partition of the day it was last updated, so a day's partition shrinks as it
    ages: an invoice issued on Monday and paid a month later has moved to the payment's day. Comparing a
    fresh day with days extracted weeks after they ended (as one long first backfill lands them) would
    read every fresh day as a spike; within a tolerance of two days or half the current age they are alike.
    """
    return abs(reference_age - current_age) <= max(AGE_TOLERANCE, current_age / 2)


def expected_daily_rows(daily_rows: Mapping[date, float], day: date) -> float | None:
    """The usual row count for `day`: the median of the same weekday over the previous weeks.

    Weekends are much quieter than weekdays in every system we extract, so comparing a Sunday with a
    Monday would warn every week. None when there are too few comparable days to judge.
    """
    samples = [
        daily_rows[earlier]
        for earlier in (day - timedelta(weeks=n) for n in range(1, VOLUME_WEEKS + 1))
        if earlier in daily_rows
    ]
    return median(samples) if len(samples) >= VOLUME_MIN_SAMPLES else None


@dataclass(frozen=True)
class VolumeVerdict:
    day: date
    rows: int
    expected: float | None
    status: str  # "usual", "collapse", "spike", "no history" or "too early"

    @property
    def anomalous(self) -> bool:
        return self.status in ("collapse", "spike")

    def describe(self) -> str:
        if self.expected is None:
            return f"{self.day}: {self.rows} rows ({self.status})"
        return f"{self.day}: {self.rows} rows, usually ~{self.expected:.0f} ({self.status})"


def judge_volume(
    day: date, rows: int, covered: float, daily_rows: Mapping[date, float]
) -> VolumeVerdict:
    """Whether a partition's row count is a collapse or a spike against its weekday's history.

    `daily_rows` holds full-day rates of earlier partitions (rows divided by the share of the day covered).
    A ratio alone would flag a quiet source going from 2 rows to 0, so the difference must also exceed
    VOLUME_SIGMAS standard deviations of a Poisson count with the expected mean.
    """
    if covered < MIN_COVERED:
        return VolumeVerdict(day, rows, None, "too early")
    rate = expected_daily_rows(daily_rows, day)
    if rate is None:
        return VolumeVerdict(day, rows, None, "no history")
    expected = rate * covered
    far_off = abs(rows - expected) > VOLUME_SIGMAS * math.sqrt(max(expected, 1.0))
    if far_off and rows < COLLAPSE_RATIO * expected:
        return VolumeVerdict(day, rows, expected, "collapse")
    if far_off and rows > SPIKE_RATIO * expected:
        return VolumeVerdict(day, rows, expected, "spike")
    return VolumeVerdict(day, rows, expected, "usual")


# --- distribution drift ------------------------------------------------------------------------------

DRIFT_MIN_VALUES = 30
DRIFT_P_VALUE = 0.001
DRIFT_MIN_STATISTIC = 0.15


@dataclass(frozen=True)
class DriftVerdict:
    field: str
    status: str  # "stable", "drifted" or "too few values"
    statistic: float | None = None
    p_value: float | None = None
    reference_median: float | None = None
    current_median: float | None = None
    reference_count: int = 0
    current_count: int = 0

    @property
    def drifted(self) -> bool:
        return self.status == "drifted"

    def describe(self) -> str:
        if self.statistic is None:
            return (
                f"{self.field}: {self.status} to compare ({self.reference_count} in history, "
                f"{self.current_count} now; at least {DRIFT_MIN_VALUES} each)"
            )
        return (
            f"{self.field}: {self.status} (KS {self.statistic:.2f}, p={self.p_value:.1e}; median "
            f"{self.reference_median:g} -> {self.current_median:g})"
        )


def judge_drift(field_name: str, reference: np.ndarray, current: np.ndarray) -> DriftVerdict:
    """Two-sample Kolmogorov-Smirnov test of the current values against recent history.

    With thousands of values a KS test finds a 'significant' difference in any two days, so a drift is
    reported only when it is both significant (p < DRIFT_P_VALUE) and material (the distributions
    differ by at least DRIFT_MIN_STATISTIC in cumulative share somewhere): a unit change, a currency
    mix-up or a source sending cents instead of dollars, not the noise of a busy Monday.
    """
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    from scipy.stats import ks_2samp  # ~1 s to import: only the drift check's step should pay it

    counts = {"reference_count": len(reference), "current_count": len(current)}
    if len(reference) < DRIFT_MIN_VALUES or len(current) < DRIFT_MIN_VALUES:
        return DriftVerdict(field_name, "too few values", **counts)
    result = ks_2samp(reference, current)
    drifted = result.pvalue < DRIFT_P_VALUE and result.statistic >= DRIFT_MIN_STATISTIC
    return DriftVerdict(
        field_name,
        "drifted" if drifted else "stable",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        reference_median=float(np.median(reference)),
        current_median=float(np.median(current)),
        **counts,
    )


# --- source schema -----------------------------------------------------------------------------------

JSON_KINDS = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}


@dataclass
class FieldCensus:
    """Which fields an API sent, in how many records, with which JSON types.

    Nested objects are flattened to dotted paths and arrays of objects to `Line[].Amount`, so a renamed
    field deep in an invoice line shows up as one field missing and one new. A field counts as present
    in a record when any of its occurrences is; `null` is a value, not a type.
    """

    records: int = 0
    present: Counter[str] = field(default_factory=Counter)
    kinds: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def __post_init__(self) -> None:
        # The path of each field under its parent's path, built once per extract instead of once per
        # record: an invoice walks the same few dozen paths thousands of times.
        self._child_paths: dict[str, dict[str, str]] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        seen: set[str] = set()
        _walk(record, "", seen, self.kinds, self._child_paths)
        self.present.update(seen)

    def fields(self) -> list[FieldSummary]:
        return [
            FieldSummary(
                path,
                "|".join(sorted(self.kinds.get(path, ()))) or "null",
                always_present=count == self.records,
                share=count / self.records,
            )
            for path, count in sorted(self.present.items())
        ]

    def summary(self) -> SourceFields:
        return SourceFields(self.records, self.fields())


@dataclass(frozen=True)
class FieldSummary:
    path: str
    kind: str  # JSON kinds seen, e.g. "number" or "number|string"; "null" when only nulls were seen
    always_present: bool  # in every record of the extract
    share: float | None = None  # of the extract's records that had it; None if not recorded


@dataclass(frozen=True)
class SourceFields:
    """The fields of one extract and how many records they were counted over (None: not recorded, as by
    extracts landed before the count was kept; such an extract is taken as large enough to judge by)."""

    records: int | None
    fields: list[FieldSummary]


# The JSON kind of each scalar type, looked up first: nearly every value in a record is one.
_SCALAR_KINDS = {kind: name for kind, name in JSON_KINDS.items() if kind is not list}
_Kinds = defaultdict[str, set[str]]
_ChildPaths = dict[str, dict[str, str]]


def _walk(value: Any, path: str, seen: set[str], kinds: _Kinds, child_paths: _ChildPaths) -> None:
    """Add the fields of value, found under path, to seen and the kinds of their values to kinds.

    Objects are walked field by field and a non-empty array of objects item by item under `path[]`;
    anything else is a leaf: null (no kind), a scalar, or an array of scalars, an empty or a mixed one
    (kind "array"). A plain recursive call per object or array, not a generator per value: a generator
    costs a resumption per level for every leaf, which made this the slowest step of an invoice
    extraction. Fields are visited in the record's order, so `seen` and `kinds` fill in the same order.
    """
    if type(value) is dict or isinstance(value, Mapping):
        _walk_object(value, path, seen, kinds, child_paths)
    else:
        _walk_array_or_leaf(value, path, seen, kinds, child_paths)


def _walk_object(
    value: Mapping[Any, Any], path: str, seen: set[str], kinds: _Kinds, child_paths: _ChildPaths
) -> None:
    children = child_paths.get(path)
    if children is None:
        children = child_paths[path] = {}
    for key, item in value.items():
        if (
            type(key) is str
        ):  # other keys are formatted each time: equal keys may format differently
            child = children.get(key)
            if child is None:
                child = children[key] = f"{path}.{key}" if path else key
        else:
            child = f"{path}.{key}" if path else str(key)
        # _walk, unrolled for the common types: a call per leaf would cost as much as the rest.
        kind = _SCALAR_KINDS.get(type(item))
        if kind is not None:
            seen.add(child)
            kinds[child].add(kind)
        elif item is None:
            seen.add(child)
        elif type(item) is dict:
            _walk_object(item, child, seen, kinds, child_paths)
        elif type(item) is list:  # never a Mapping
            _walk_array_or_leaf(item, child, seen, kinds, child_paths)
        else:
            _walk(item, child, seen, kinds, child_paths)


def _walk_array_or_leaf(
    value: Any, path: str, seen: set[str], kinds: _Kinds, child_paths: _ChildPaths
) -> None:
    if isinstance(value, list) and value and all(_is_object(item) for item in value):
        item_path = f"{path}[]"
        for item in value:
            _walk_object(item, item_path, seen, kinds, child_paths)
    else:
        seen.add(path)
        if value is not None:
            kinds[path].add(JSON_KINDS.get(type(value), "string"))


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


@dataclass(frozen=True)
class SchemaChanges:
    added: list[str]
    missing: list[str]
    retyped: list[str]
    baseline_runs: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.missing or self.retyped)

    def describe(self) -> str:
        if not self.baseline_runs:
            return "No earlier extract to compare with."
        if not self.changed:
            return (
                f"The source sent the same fields as in the previous {self.baseline_runs} extracts."
            )
        parts = [
            f"{label}: {', '.join(items)}"
            for label, items in (
                ("New fields", self.added),
                ("Missing fields", self.missing),
                ("Changed types", self.retyped),
            )
            if items
        ]
        return "; ".join(parts)


# How unlikely a field's absence from (or presence in) every baseline record must be, were its share the
# same as in the current extract, before it is called new (or missing). A baseline of a few dozen records
# says nothing about a field one record in ten carries; a renamed field, in every record now and in none
# before, is reported against any baseline.
SCHEMA_CHANCE = 0.001


def schema_changes(baseline: list[SourceFields], current: SourceFields) -> SchemaChanges:
    """What changed in the fields a source sends, against its earlier extracts (newest first).

    Optional fields come and go with the data (a note only voided invoices carry), so a field is new only
    if no earlier extract had it, and missing only if every earlier extract had it in every record while
    some records now lack it; either only when the earlier extracts held enough records that this is not
    chance (SCHEMA_CHANCE). A field is retyped if it now carries a JSON type it never had.
    """
    if not baseline:
        return SchemaChanges([], [], [], 0)
    counts = [extract.records for extract in baseline]
    baseline_records = None if None in counts else sum(counts)
    seen_kinds: defaultdict[str, set[str]] = defaultdict(set)
    always = set.intersection(
        *({f.path for f in extract.fields if f.always_present} for extract in baseline)
    )
    for extract in baseline:
        for summary in extract.fields:
            seen_kinds[summary.path].update(_kinds(summary))
    now = {summary.path: summary for summary in current.fields}
    added = sorted(
        path
        for path, summary in now.items()
        if path not in seen_kinds and _beyond_chance(1 - _share(summary), baseline_records)
    )
    missing = sorted(
        f"{path} (absent from some records)" if path in now else path
        for path in always
        if path not in now
        or (not now[path].always_present and _beyond_chance(_share(now[path]), baseline_records))
    )
    retyped = sorted(
        f"{path} ({'|'.join(sorted(seen_kinds[path]))} -> {summary.kind})"
        for path, summary in now.items()
        if path in seen_kinds and seen_kinds[path] and not _kinds(summary) <= seen_kinds[path]
    )
    return SchemaChanges(added, missing, retyped, len(baseline))


def _share(summary: FieldSummary) -> float:
    if summary.share is not None:
        return summary.share
    return 1.0 if summary.always_present else 0.5


def _beyond_chance(each_record: float, records: int | None) -> bool:
    """Whether `records` independent records, each with probability `each_record`, all going one way
    would be rarer than SCHEMA_CHANCE; an unknown count is taken as enough."""
    return records is None or each_record**records < SCHEMA_CHANCE


def _kinds(summary: FieldSummary) -> set[str]:
    return set() if summary.kind == "null" else set(summary.kind.split("|"))
