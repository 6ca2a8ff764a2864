"""The statistics behind the history checks, called directly: what warns and, as important, what does not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from unified_assets.quality import (
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
