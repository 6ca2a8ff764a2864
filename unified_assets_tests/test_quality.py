"""The statistics behind the history checks, called directly: what warns and, as important, what does not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from unified_assets.quality import (
    FieldCensus,
    covered_fraction,
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


def census(*records) -> list:
    counted = FieldCensus()
    for record in records:
        counted.add(record)
    return counted.fields()


INVOICE = {"Id": "1", "TotalAmt": 10.5, "Line": [{"Amount": 3, "Detail": {"Qty": 1}}], "Note": None}


def test_the_census_flattens_nested_fields_and_arrays_of_objects():
    fields = {f.path: f for f in census(INVOICE, {**INVOICE, "Memo": "x"})}
    assert set(fields) == {"Id", "TotalAmt", "Line[].Amount", "Line[].Detail.Qty", "Note", "Memo"}
    assert fields["TotalAmt"].kind == "number" and fields["TotalAmt"].always_present
    assert fields["Note"].kind == "null"
    assert not fields["Memo"].always_present


def test_optional_fields_coming_and_going_are_not_a_schema_change():
    baseline = [census(INVOICE, {**INVOICE, "Memo": "x"}), census(INVOICE)]
    assert not schema_changes(baseline, census(INVOICE)).changed
    assert not schema_changes(baseline, census({**INVOICE, "Memo": "y"})).changed


def test_renamed_retyped_and_dropped_fields_are_reported():
    baseline = [census(INVOICE)]
    renamed = {**{k: v for k, v in INVOICE.items() if k != "TotalAmt"}, "Total": 10.5}
    changes = schema_changes(baseline, census(renamed, INVOICE))
    assert changes.added == ["Total"]
    assert changes.missing == ["TotalAmt (absent from some records)"]
    retyped = schema_changes(baseline, census({**INVOICE, "TotalAmt": "10.50"}))
    assert retyped.retyped == ["TotalAmt (number -> string)"]
    assert "Changed types: TotalAmt (number -> string)" in retyped.describe()


def test_no_baseline_is_no_change():
    changes = schema_changes([], census(INVOICE))
    assert not changes.changed and changes.describe() == "No earlier extract to compare with."
