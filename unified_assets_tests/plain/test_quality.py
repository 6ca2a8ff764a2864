"""The statistics behind the history checks, called directly: what warns and, as important, what does not."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from unified_assets.quality import (
    JSON_KINDS,
    FieldCensus,
    SourceFields,
    comparable_extracts,
    covered_fraction,
    extract_age,
    judge_drift,
    judge_volume,
    schema_changes,
)

MONDAY = date(2026, 3, 9)


def weekly(rows: float, weeks: int = 8, day: date = MONDAY) -> dict[date, float]:
    """The same weekday in each earlier week with `rows`, and busy other days that must not count."""
    history = {day - timedelta(weeks=n): rows for n in range(1, weeks + 1)}
    history.update({day - timedelta(days=n): 10_000.0 for n in range(1, 7)})
    return history


@pytest.mark.parametrize(
    ("rows", "usual", "status"),
    [
        (100, 100, "usual"),
        (40, 100, "usual"),  # a slow day, not a collapse
        (10, 100, "collapse"),
        (400, 100, "spike"),
        (0, 3, "usual"),  # a quiet source with no rows today is not statistically remarkable
        (0, 40, "collapse"),
    ],
)
def test_volume_is_judged_against_the_same_weekday(rows, usual, status):
    assert judge_volume(MONDAY, rows, 1.0, weekly(usual)).status == status


def test_todays_partial_partition_is_judged_pro_rata():
    assert judge_volume(MONDAY, 50, 0.5, weekly(100)).status == "usual"
    assert judge_volume(MONDAY, 5, 0.1, weekly(100)).status == "too early"


def test_volume_needs_three_comparable_weeks():
    assert judge_volume(MONDAY, 0, 1.0, weekly(100, weeks=2)).status == "no history"


def test_an_extract_s_age_counts_from_the_end_of_its_day():
    noon = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert extract_age(MONDAY, noon) == timedelta(0), "today's partition is not aged yet"
    assert extract_age(MONDAY, noon + timedelta(days=1)) == timedelta(hours=12)


@pytest.mark.parametrize(
    ("current_days", "reference_days", "comparable"),
    [
        (0.1, 0.5, True),  # today's run against days the daily run extracted after they ended
        (0.1, 60, False),  # a fresh day against days a first backfill landed two months late
        (0.1, 3, False),
        (100, 149, True),  # both long settled: a backfill's old days against each other
        (30, 58, False),
    ],
)
def test_only_extracts_of_a_similar_age_are_compared(current_days, reference_days, comparable):
    current, reference = timedelta(days=current_days), timedelta(days=reference_days)
    assert comparable_extracts(current, reference) is comparable


def test_covered_fraction_is_clamped_to_the_day():
    noon = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert covered_fraction(MONDAY, noon) == 0.5
    assert covered_fraction(MONDAY, noon + timedelta(days=3)) == 1.0
    assert covered_fraction(MONDAY, noon - timedelta(days=1)) == 0.0


def test_drift_needs_a_material_and_significant_difference():
    rng = np.random.default_rng(3)
    reference = rng.poisson(8, 20_000).astype(float)
    busier = rng.poisson(8.4, 20_000).astype(
        float
    )  # significant with this many values, not material
    assert not judge_drift("qty", reference, busier).drifted
    assert judge_drift("qty", reference, reference * 12).drifted
    few = judge_drift("qty", reference, reference[:10] * 12)
    assert few.status == "too few values" and "10 now" in few.describe()


def test_drift_ignores_missing_values():
    values = np.array([1.0, 2.0, np.nan] * 40)
    verdict = judge_drift("qty", values, values)
    assert verdict.status == "stable" and verdict.current_count == 80


def census(*records) -> SourceFields:
    counted = FieldCensus()
    for record in records:
        counted.add(record)
    return counted.summary()


INVOICE = {"Id": "1", "TotalAmt": 10.5, "Line": [{"Amount": 3, "Detail": {"Qty": 1}}], "Note": None}


def test_the_census_flattens_nested_fields_and_arrays_of_objects():
    fields = {f.path: f for f in census(INVOICE, {**INVOICE, "Memo": "x"}).fields}
    assert set(fields) == {"Id", "TotalAmt", "Line[].Amount", "Line[].Detail.Qty", "Note", "Memo"}
    assert fields["TotalAmt"].kind == "number" and fields["TotalAmt"].always_present
    assert fields["Note"].kind == "null"
    assert not fields["Memo"].always_present and fields["Memo"].share == 0.5


def test_optional_fields_coming_and_going_are_not_a_schema_change():
    baseline = [census(INVOICE, {**INVOICE, "Memo": "x"}), census(INVOICE)]
    assert not schema_changes(baseline, census(INVOICE)).changed
    assert not schema_changes(baseline, census({**INVOICE, "Memo": "y"})).changed


def test_renamed_retyped_and_dropped_fields_are_reported():
    baseline = [census(*[INVOICE] * 50)]
    renamed = {**{k: v for k, v in INVOICE.items() if k != "TotalAmt"}, "Total": 10.5}
    changes = schema_changes(baseline, census(renamed, INVOICE))
    assert changes.added == ["Total"]
    assert changes.missing == ["TotalAmt (absent from some records)"]
    retyped = schema_changes(baseline, census({**INVOICE, "TotalAmt": "10.50"}))
    assert retyped.retyped == ["TotalAmt (number -> string)"]
    assert "Changed types: TotalAmt (number -> string)" in retyped.describe()


def test_a_field_renamed_in_every_record_is_reported_against_any_baseline():
    renamed = {**{k: v for k, v in INVOICE.items() if k != "TotalAmt"}, "Total": 10.5}
    changes = schema_changes([census(INVOICE)], census(renamed, renamed))
    assert changes.added == ["Total"] and changes.missing == ["TotalAmt"]


def invoices(count: int, with_memo: int) -> SourceFields:
    return census(*[{**INVOICE, "Memo": "x"}] * with_memo, *[INVOICE] * (count - with_memo))


def test_an_optional_field_a_small_baseline_happened_not_to_see_is_not_new():
    """A first extract of 39 invoices, none with the memo one invoice in twenty carries (a 13% chance),
    is no evidence that the memo is new; 500 without it are."""
    current = invoices(300, with_memo=15)
    assert not schema_changes([invoices(39, with_memo=0)], current).changed
    assert schema_changes([invoices(500, with_memo=0)], current).added == ["Memo"]


def test_an_optional_field_a_small_baseline_happened_to_see_everywhere_is_not_missing():
    current = invoices(300, with_memo=270)
    assert not schema_changes([invoices(39, with_memo=39)], current).changed
    assert schema_changes([invoices(500, with_memo=500)], current).missing == [
        "Memo (absent from some records)"
    ]


def test_extracts_that_did_not_record_their_size_are_judged_as_before():
    legacy = SourceFields(None, [replace(f, share=None) for f in invoices(3, with_memo=0).fields])
    assert schema_changes([legacy], invoices(300, with_memo=15)).added == ["Memo"]


def test_no_baseline_is_no_change():
    changes = schema_changes([], census(INVOICE))
    assert not changes.changed and changes.describe() == "No earlier extract to compare with."


# --- the census against a plain reference ------------------------------------------------------------


def reference_leaves(value, path):
    """The census walk as first written (a generator per value): the definition the fast walk must match."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from reference_leaves(item, f"{path}.{key}" if path else str(key))
        return
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        for item in value:
            yield from reference_leaves(item, f"{path}[]")
        return
    yield path, None if value is None else JSON_KINDS.get(type(value), "string")


def reference_census(records) -> FieldCensus:
    counted = FieldCensus()
    for record in records:
        counted.records += 1
        seen: set[str] = set()
        for path, kind in reference_leaves(record, ""):
            seen.add(path)
            if kind is not None:
                counted.kinds[path].add(kind)
        counted.present.update(seen)
    return counted


def assert_same_census(records) -> None:
    """Same counts, kinds and summary, and the same insertion order in `present` and `kinds`."""
    fast, reference = census_of(records), reference_census(records)
    assert fast.records == reference.records
    assert list(fast.present.items()) == list(reference.present.items())
    assert list(fast.kinds.items()) == list(reference.kinds.items())
    assert fast.summary() == reference.summary()


def census_of(records) -> FieldCensus:
    counted = FieldCensus()
    for record in records:
        counted.add(record)
    return counted


# Keys a source might send, and some it should not: dots, unicode, "", "[]", digits, and keys that are
# not strings (1 and True are equal dict keys but different paths).
KEYS = ("Id", "Line", "Amount", "a.b", "Größe", "名前", "", "[]", "0", "Detail", "value", "name")
ODD_KEYS = (1, True, 1.0, None, ("a", 1))


def random_value(rng: random.Random, depth: int):
    choice = rng.randrange(12 if depth < 4 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False, 0, 1, -7, 2**70])
    if choice == 2:
        return rng.choice([0.0, 1.5, -2.25, float("inf")])
    if choice == 3:
        return rng.choice(["", "x", "1", "é"])
    if choice == 4:
        return rng.choice([(), ("a",), b"raw", date(2026, 3, 9)])  # not JSON: kind "string"
    if choice == 5:
        return []
    if choice == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(1, 3))]  # scalars or mixed
    if choice in (7, 8):
        return [random_object(rng, depth + 1) for _ in range(rng.randint(1, 4))]  # array of objects
    if choice == 9:  # objects and a null or a scalar: a mixed array, a leaf
        items = [random_object(rng, depth + 1), rng.choice([None, 3, "x", []])]
        rng.shuffle(items)
        return items
    return random_object(rng, depth + 1)


def random_object(rng: random.Random, depth: int):
    keys = rng.sample(KEYS, rng.randint(0, 5))
    if rng.random() < 0.1:
        keys.append(rng.choice(ODD_KEYS))
    return {key: random_value(rng, depth) for key in keys}


def test_the_census_matches_the_reference_on_random_records():
    rng = random.Random("census")
    for _ in range(300):
        assert_same_census([random_object(rng, 0) for _ in range(rng.randint(1, 8))])


@pytest.mark.parametrize(
    "records",
    [
        [{"Line": []}, {"Line": [1, 2]}, {"Line": [{"A": 1}, 2]}, {"Line": [{"A": 1}, None]}],
        [{"Line": [{"A": 1}, {"B": "x"}, {}]}, {"Line": [{"A": 1.5, "B": None}]}],
        [{"Line": [{"Sub": [{"Q": 1}, {"Q": None}]}, {"Sub": []}]}],
        [{"Detail": {"Qty": 1}}, {"Detail": None}, {"Detail": [{"Qty": True}]}],
        [{"Flag": True, "Count": 1, "Share": 1.0}, {"Flag": 1, "Count": True, "Share": 1}],
        [{"a.b": {"c": 1}}, {"a": {"b.c": 2}}, {"Größe": {"名前": "x"}}],
        [{"": {"a": 1}}, {"": [{"a": 1}]}, {"[]": 1}, {"x": {"": {"": 2}}}],
        [{1: "a"}, {True: "b"}, {1.0: {"c": None}}, {None: 1}, {"1": 2}],
        [{"x": {}}, {"x": {"y": {}}}, {}],
        [{"Line": [OrderedDict(A=1), {"A": "1"}]}, OrderedDict(Top=[OrderedDict()])],
    ],
)
def test_the_census_matches_the_reference_on_the_edge_cases(records):
    assert_same_census(records)


def test_the_census_of_arrays_and_nulls_reads_as_documented():
    fields = {
        f.path: f.kind
        for f in census_of(
            [
                {"Tags": ["a"], "Line": [{"Qty": 1}, {"Qty": None, "Item": {"Id": "7"}}]},
                {"Tags": [], "Line": [{"Qty": 2.5}, 3], "Note": None},
            ]
        ).fields()
    }
    assert fields == {
        "Tags": "array",
        "Line[].Qty": "number",
        "Line[].Item.Id": "string",
        "Line": "array",
        "Note": "null",
    }


def test_a_census_keeps_no_state_between_censuses_that_changes_its_counts():
    rng = random.Random("census-state")
    records = [random_object(rng, 0) for _ in range(50)]
    first = census_of(records)
    assert census_of(records) == first
    assert census_of(records[::-1]).summary() == reference_census(records[::-1]).summary()
