"""Scoring a landed batch (one day of one source) as a whole against the batches before it.

The rule-based checks each watch one thing (the row count, one field's distribution, the schema). The
failures that get through them are the quiet ones: one customer's records stop arriving, a currency
switch doubles every price, an integration writes one value into a field, a SKU changes its code, half a
day is lost. Each shows in a batch's *profile* (its volume against the usual weekday, prices against each
SKU's usual price, SKUs never seen, how many rows the usual customers should have had and did not, how
concentrated each field's values are) and none is a fixed threshold on one column.

`BatchAnomalyDetector` learns what profiles usually look like from batches already landed (a robust
distance over scaled profiles) and scores new ones; its threshold is the distance an ordinary day
exceeds about once in 2,000, and every verdict names the profile features that drove it, each with its
usual value. No Dagster here: the asset check (`defs/ingestion/batch_checks.py`) and the evaluation
(`benchmarks/batch_anomalies.py`) hand it landed rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from statistics import median
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from unified_assets.confined_duckdb import confined_duckdb

if TYPE_CHECKING:
    import pyarrow as pa

# scipy and scikit-learn are imported where a detector is fitted: the check's module, which imports
# this one, is loaded by every process that loads the definitions.


@dataclass(frozen=True)
class BatchShape:
    """Which lake columns of a raw table say what a profile needs (None: the table has no such thing)."""

    table: str
    customer: str
    fields: tuple[str, ...]  # record-level values whose concentration is watched
    sku: str | None = None  # inside `lines`
    price: str | None = None  # inside `lines`: a unit price
    quantity: str | None = None  # inside `lines`


SHAPES = {
    "invoices": BatchShape(
        "invoices", "customer_ref", ("customer_ref",), "item_name", "unit_price", "quantity"
    ),
    "purchase_orders": BatchShape(
        "purchase_orders",
        "customer_account",
        ("customer_account", "supplier_id"),
        "item_number",
        "price",
        "quantity",
    ),
    "support_tickets": BatchShape(
        "support_tickets",
        "organization_id",
        ("organization_id", "priority", "ticket_type", "via_channel", "status"),
    ),
}


@dataclass(frozen=True)
class BatchSummary:
    """What one batch holds, before it is compared with anything: counts and per-SKU prices."""

    day: date
    rows: int
    customers: Mapping[str, int]
    # Per watched field (and line quantity): the share of its most common value.
    top_shares: Mapping[str, float]
    sku_lines: Mapping[str, int] = field(default_factory=dict)
    # Per SKU: the median of its lines' log unit price.
    sku_log_price: Mapping[str, float] = field(default_factory=dict)


def summarise(rows: pa.Table, shape: BatchShape, day: date) -> BatchSummary:
    """Summarise one day's landed rows (the raw table's columns, as in its lake partition), in a
    DuckDB that reaches no file: the rows are handed in."""
    con = confined_duckdb(allowed=())
    try:
        con.register("batch", rows)
        count = con.execute("select count(*) from batch").fetchone()[0]
        customers = dict(
            con.execute(
                f"select cast({shape.customer} as varchar), count(*) from batch "
                f"where {shape.customer} is not null group by 1"
            ).fetchall()
        )
        top_shares = {name: _top_share(con, "batch", name, count) for name in shape.fields}
        sku_lines: dict[str, int] = {}
        sku_log_price: dict[str, float] = {}
        if shape.sku is not None:
            con.execute(
                "create temp view line as select unnest(lines, recursive := true) from batch"
            )
            lines = con.execute("select count(*) from line").fetchone()[0]
            top_shares[f"line {shape.quantity}"] = _top_share(con, "line", shape.quantity, lines)
            for sku, n, log_price in con.execute(
                f"select {shape.sku}, count(*), median(ln(cast({shape.price} as double))) from line "
                f"where {shape.sku} is not null and {shape.price} > 0 group by 1"
            ).fetchall():
                sku_lines[sku] = n
                sku_log_price[sku] = log_price
        return BatchSummary(day, count, customers, top_shares, sku_lines, sku_log_price)
    finally:
        con.close()


def _top_share(con: duckdb.DuckDBPyConnection, relation: str, column: str, count: int) -> float:
    if not count:
        return 0.0
    top = con.execute(
        f"select count(*) from {relation} group by {column} order by 1 desc limit 1"
    ).fetchone()
    return top[0] / count


# --- features -----------------------------------------------------------------------------------

VOLUME_WEEKS = 8
VOLUME_MIN_SAMPLES = 2
CALENDAR_PEAK = 2.0  # a day holding at least this many times its weekday's usual rows
MAX_USUAL_MEMBERS = 200
CUSTOMER_HALF_LIFE_DAYS = 28


@dataclass(frozen=True)
class Usual:
    """What the learned batches usually hold: rows per customer (the recent days weighing more), in
    how many batches each SKU came, and each SKU's price."""

    customer_rows: Mapping[str, float]  # weighted by recency (`CUSTOMER_HALF_LIFE_DAYS`)
    rows: float
    sku_batches: Mapping[str, int]
    sku_log_price: Mapping[str, float]

    @classmethod
    def learn(cls, batches: Sequence[BatchSummary]) -> Usual:
        skus: Counter[str] = Counter()
        prices: dict[str, list[float]] = {}
        for batch in batches:
            skus.update(batch.sku_lines.keys())
            for sku, log_price in batch.sku_log_price.items():
                prices.setdefault(sku, []).append(log_price)
        customers, rows = _recent_customers(batches)
        return cls(
            customer_rows=_largest(customers),
            rows=rows,
            sku_batches=dict(skus),
            sku_log_price={sku: median(values) for sku, values in prices.items()},
        )

    @classmethod
    def before_each(
        cls, batches: Sequence[BatchSummary], prices: Mapping[str, float]
    ) -> list[Usual]:
        """What was usual before each of `batches` (in day order), from the batches before it: how a
        learned day is profiled, as a new day is against the days before it. Against all the learned
        days, a day's own new SKUs would be known (and they come every week, as products launch), so
        no learned day would hold one and every new day's would look strange. Prices are the whole
        window's: they move slowly."""
        customers: dict[str, float] = {}
        skus: Counter[str] = Counter()
        rows = 0.0
        usuals = []
        for batch in batches:
            usuals.append(cls(_largest(customers), rows, dict(skus), prices))
            customers, rows = _recent_customers([batch], customers, rows)
            skus.update(batch.sku_lines.keys())
        return usuals

    @property
    def customer_share(self) -> dict[str, float]:
        return {customer: n / max(self.rows, 1) for customer, n in self.customer_rows.items()}


def _recent_customers(
    batches: Sequence[BatchSummary], customers: Mapping[str, float] | None = None, rows: float = 0.0
) -> tuple[dict[str, float], float]:
    """Rows per customer and in all, each day's weighed down by half every `CUSTOMER_HALF_LIFE_DAYS`
    days older than the newest (continuing from `customers` and `rows`, one day before the first):
    customers come and go, and one that stopped buying two months ago is not missing today."""
    keep = 0.5 ** (1 / CUSTOMER_HALF_LIFE_DAYS)
    weighed = dict(customers or {})
    for batch in batches:
        weighed = {customer: n * keep for customer, n in weighed.items()}
        rows *= keep
        for customer, n in batch.customers.items():
            weighed[customer] = weighed.get(customer, 0.0) + n
        rows += batch.rows
    return weighed, rows


def _largest(customers: Mapping[str, float]) -> dict[str, float]:
    return dict(Counter(customers).most_common(MAX_USUAL_MEMBERS))


def usual_rows(history: Mapping[date, int], day: date) -> float | None:
    """The usual row count for `day`: the median of the same weekday over the previous weeks (weekends
    are quieter), unless the day is a recurring peak of the calendar.

    Source systems run batch jobs on calendar days (an ERP export every 1st of the month touching every
    open order, a quarter's close re-versioning every invoice of the quarter), and a record lands on the
    day of its last update, so those days hold several times a usual day. Such a day is usual for
    itself: when the same day of the last two months (monthly) or of the last quarter alone (quarterly)
    was a peak, its usual is that peak."""
    weekday = _weekday_usual(history, day)
    if weekday is None:
        return None
    months_back = {n: peer for n in (1, 2, 3) if (peer := _months_before(day, n)) in history}
    peaks = {n for n, peer in months_back.items() if _was_peak(history, peer)}
    if {1, 2} <= peaks:
        return median(history[months_back[n]] for n in sorted(peaks))
    if peaks == {3}:
        return float(history[months_back[3]])
    return weekday


def _weekday_usual(history: Mapping[date, int], day: date) -> float | None:
    samples = [
        history[earlier]
        for earlier in (day - timedelta(weeks=n) for n in range(1, VOLUME_WEEKS + 1))
        if earlier in history
    ]
    return median(samples) if len(samples) >= VOLUME_MIN_SAMPLES else None


def _was_peak(history: Mapping[date, int], day: date) -> bool:
    usual = _weekday_usual(history, day)
    return usual is not None and history[day] >= CALENDAR_PEAK * max(usual, 1.0)


def _months_before(day: date, months: int) -> date | None:
    month = day.month - months
    year = day.year + (month - 1) // 12
    try:
        return day.replace(year=year, month=(month - 1) % 12 + 1)
    except ValueError:  # the 31st of a shorter month
        return None


def features(batch: BatchSummary, usual: Usual, rows_usually: float | None) -> dict[str, float]:
    """The batch's profile against what is usual; each feature is 0 when nothing is off.

    - volume: log of rows against the weekday's usual (0: as usual; -0.69: half of it);
    - price level: the line-weighted median of each SKU's log price against its usual price;
    - unknown SKUs: the lines whose SKU code was never seen, on a log scale (a count, not a share: one
      renamed SKU is as clear in a large batch as in a small one);
    - missing customers: how surprising the most unexpected absence of a usual customer is for a
      batch of this size (see `_largest_absent`);
    - one feature per watched field: the share of its most common value (1.0: stuck at one value).
    """
    profile = {
        "volume": 0.0 if rows_usually is None else math.log((batch.rows + 1) / (rows_usually + 1)),
        "missing customers": _largest_absent(usual.customer_share, batch.customers, batch.rows),
    }
    if batch.sku_lines or usual.sku_log_price:
        profile["price level"] = _price_level(batch, usual)
        unknown = sum(n for sku, n in batch.sku_lines.items() if sku not in usual.sku_batches)
        profile["unknown SKUs"] = math.log1p(unknown)
    profile.update({f"{name} concentration": share for name, share in batch.top_shares.items()})
    return profile


def _largest_absent(usual: Mapping[str, float], present: Mapping[str, int], total: int) -> float:
    """How surprising the batch's most unexpected absence is, on a log scale: 0 when some usual member
    is absent about as often as chance has it.

    A usual member expected `e` times in a batch of this size is absent by chance with probability
    exp(-e); among all the members expected at least as often as the most expected absent one, some
    absence has probability about the sum of theirs. The surprise is minus its log: close to `e` when
    a single large member is gone, close to 0 on a quiet weekend where many small members are absent.
    Unlike `e` itself it does not grow with the batch's size."""
    most_expected = most_expected_absent(usual, present, total)
    if most_expected is None:
        return 0.0
    most = most_expected[1]
    expected = [share * total for share in usual.values()]
    chance = sum(math.exp(-e) for e in expected if e >= most)
    return math.log1p(max(0.0, -math.log(chance)))


def most_expected_absent(
    usual: Mapping[str, float], present: Mapping[str, int], total: int
) -> tuple[str, float] | None:
    """The usual member absent from the batch that a batch of `total` should have held most often."""
    absent = [(share * total, member) for member, share in usual.items() if member not in present]
    if not absent:
        return None
    expected, member = max(absent)
    return member, expected


def _price_level(batch: BatchSummary, usual: Usual) -> float:
    ratios, weights = [], []
    for sku, log_price in batch.sku_log_price.items():
        if sku in usual.sku_log_price:
            ratios.append(log_price - usual.sku_log_price[sku])
            weights.append(batch.sku_lines[sku])
    if not ratios:
        return 0.0
    order = np.argsort(ratios)
    cumulative = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(ratios)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


# --- the detector -------------------------------------------------------------------------------

MIN_BATCHES = 28
LEARN_DAYS = 120  # the landed days before a judged day that a detector learns from
RELEARN_DAYS = 7  # along a range of judged days, a detector is learned again every week
# Each feature's spread is learned from the batches (a robust standard deviation), but never taken below
# the smallest change that matters: a feature that never moved (no unknown SKU in months) would
# otherwise make any change, however small, infinitely strange.
SMALLEST_CHANGE = {
    "volume": 0.05,
    "missing customers": 0.25,
    "price level": 0.02,
    "unknown SKUs": 0.25,
}
SMALLEST_CONCENTRATION_CHANGE = 0.02
# The direction in which a feature's change is a fault (1: up, -1: down, 0: either; a watched field's
# concentration: up). A day holding more than its weekday's usual (a promotion, launches) has lost
# nothing, a field whose values spread more is not stuck; prices are watched both ways.
FAULT_DIRECTION = {"volume": -1, "missing customers": 1, "unknown SKUs": 1, "price level": 0}
# A normal distribution's 10th to 90th percentile span, in standard deviations.
SPREAD_OF_10_TO_90 = 2.5631
# How often an ordinary day may be called unusual (the target: at most one in 100).
FALSE_ALARM_RATE = 1 / 2000
DRIVERS = 3


@dataclass(frozen=True)
class Driver:
    feature: str
    value: float
    usual: float
    strangeness: float  # distance from usual, in learned robust standard deviations

    def describe(self) -> str:
        return f"{self.feature} {self.value:.2f} (usually {self.usual:.2f})"


@dataclass(frozen=True)
class BatchVerdict:
    day: date
    score: float
    threshold: float
    drivers: tuple[Driver, ...]
    # The usual customer most expected in this batch that it lacks, and the rows it usually sends.
    absent_customer: tuple[str, float] | None = None

    @property
    def anomalous(self) -> bool:
        return self.score > self.threshold

    @property
    def missing_customer(self) -> str | None:
        """Who is missing, when a missing customer is what drove the score most."""
        if self.absent_customer is None or self.drivers[0].feature != "missing customers":
            return None
        customer, rows = self.absent_customer
        return f"customer {customer} absent (usually ~{rows:.0f} rows in a batch this size)"

    def describe(self) -> str:
        level = "unusual" if self.anomalous else "usual"
        drivers = "; ".join(driver.describe() for driver in self.drivers)
        absent = f"; {self.missing_customer}" if self.missing_customer else ""
        return (
            f"{self.day}: {level} batch (score {self.score:.2f}, threshold {self.threshold:.2f}): "
            f"{drivers}{absent}"
        )


class NotEnoughBatches(ValueError):
    """Too few landed batches to learn what usual looks like."""


class BatchAnomalyDetector:
    """Learns usual batch profiles of one source and scores new batches against them.

    The profiles are scaled by their learned robust spread (floored at the smallest change that
    matters), and a batch's score is its Mahalanobis distance from the usual profile under the
    covariance the ordinary learned days show (`LedoitWolf`, shrunk so that it is well conditioned with
    a few dozen days). A batch far out on a single feature (prices doubled, a field stuck) scores high
    even when its other features are ordinary. Tried first and dropped, on the evaluation's figures
    (docs/benchmarks.md, section 10): an isolation forest, which dilutes a one-feature anomaly among the
    features it splits on (it missed most injected anomalies), and a local outlier factor, whose
    neighbourhood distances are blurred the same way by the ordinary features' noise."""

    def __init__(self, shape: BatchShape):
        self.shape = shape

    def fit(self, batches: Sequence[BatchSummary]) -> BatchAnomalyDetector:
        if len(batches) < MIN_BATCHES:
            raise NotEnoughBatches(
                f"{self.shape.table}: {len(batches)} landed days; the batch anomaly score learns "
                f"from at least {MIN_BATCHES}"
            )
        ordered = sorted(batches, key=lambda batch: batch.day)
        self.usual = Usual.learn(ordered)
        self.history = {batch.day: batch.rows for batch in ordered}
        # The first half of the window is what the second half's days are profiled against.
        before = Usual.before_each(ordered, self.usual.sku_log_price)
        half = len(ordered) // 2
        learned = [self._profile(b, usual) for b, usual in zip(ordered, before, strict=True)][half:]
        self.names = sorted(set().union(*learned))
        matrix = self._matrix(learned)
        self.centre = np.median(matrix, axis=0)
        low, high = np.percentile(matrix, [10, 90], axis=0)
        self.spread = np.maximum(
            (high - low) / SPREAD_OF_10_TO_90, [_smallest(n) for n in self.names]
        )
        scaled = self._scaled(matrix)
        # Learn how the features vary together from the ordinary days: a quarter's close or a holiday
        # in the learned window would otherwise widen the usual spread for everything after it.
        ordinary = scaled[
            np.abs(scaled).max(axis=1) <= np.quantile(np.abs(scaled).max(axis=1), 0.95)
        ]
        from sklearn.covariance import LedoitWolf

        covariance = LedoitWolf().fit(ordinary).covariance_
        # No feature varies less than its smallest change that matters (it was scaled by it).
        covariance += np.diag(np.maximum(0.0, 1.0 - np.diag(covariance)))
        self.precision = np.linalg.inv(covariance)
        self.direction = np.array([FAULT_DIRECTION.get(name, 1) for name in self.names])
        # The threshold is the one the distance counting both directions has: an ordinary day's
        # distance counting only the faults' directions is rarely larger (on 0-20 of 214 days in the
        # evaluation, by at most 3%), so ordinary days exceed it no more often than before, and the
        # days that moved only the harmless way (a promotion) no longer do.
        self.threshold = self._threshold(self._distance(scaled, directed=False))
        return self

    def score(self, batch: BatchSummary) -> BatchVerdict:
        row = self._matrix([self._profile(batch, self.usual)])
        scaled = self._scaled(row)
        score = float(self._distance(scaled)[0])
        strangeness = np.abs(scaled[0])
        drivers = tuple(
            Driver(self.names[i], float(row[0][i]), float(self.centre[i]), float(strangeness[i]))
            for i in np.argsort(-strangeness)[:DRIVERS]
        )
        absent = most_expected_absent(self.usual.customer_share, batch.customers, batch.rows)
        return BatchVerdict(batch.day, score, self.threshold, drivers, absent)

    def remember(self, batch: BatchSummary) -> None:
        """Take a judged day as known history for the days after it, until the next relearning: its
        SKUs are no longer new (a product launched on Monday is not new again on Tuesday) and its
        row count joins the weekday's usual."""
        skus = dict(self.usual.sku_batches)
        for sku in batch.sku_lines:
            skus[sku] = skus.get(sku, 0) + 1
        self.usual = dataclasses.replace(self.usual, sku_batches=skus)
        self.history[batch.day] = batch.rows

    def _threshold(self, learned: np.ndarray) -> float:
        """The distance an ordinary day exceeds with probability `FALSE_ALARM_RATE`, scaled to the
        learned days' median distance.

        A new day's squared distance, under a mean and covariance estimated from `n` days over `p`
        features, follows an F distribution (Hotelling's T squared), not a chi-squared one: with few
        learned days (a first backfill's fifth week) the tail is much longer, and a chi-squared
        threshold called ordinary days unusual. Scaled from the median, not the learned days' own
        tail: a quarter's close in the window would otherwise raise the threshold for months."""
        from scipy.stats import f as f_distribution

        days, features = len(learned), len(self.names)
        freedom = max(days - features, 1)
        tail_over_median = math.sqrt(
            f_distribution.ppf(1 - FALSE_ALARM_RATE, features, freedom)
            / f_distribution.ppf(0.5, features, freedom)
        )
        return float(np.median(learned) * tail_over_median)

    def _distance(self, scaled: np.ndarray, directed: bool = True) -> np.ndarray:
        """Mahalanobis distance from the usual profile; `directed`: counting each feature's change
        only in the direction its fault moves it."""
        if directed:
            towards = np.maximum(scaled * self.direction, 0.0) * self.direction
            scaled = np.where(self.direction == 0, scaled, towards)
        return np.sqrt(np.einsum("ij,jk,ik->i", scaled, self.precision, scaled))

    def _scaled(self, matrix: np.ndarray) -> np.ndarray:
        return (matrix - self.centre) / self.spread

    def _profile(self, batch: BatchSummary, usual: Usual) -> dict[str, float]:
        return features(batch, usual, usual_rows(self.history, batch.day))

    def _matrix(self, profiles: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.array([[profile.get(name, 0.0) for name in self.names] for profile in profiles])


def _smallest(feature: str) -> float:
    return SMALLEST_CHANGE.get(feature, SMALLEST_CONCENTRATION_CHANGE)


def detectors_along(
    days: Sequence[date], landed: Mapping[date, BatchSummary], shape: BatchShape
) -> Iterator[tuple[date, BatchAnomalyDetector | NotEnoughBatches]]:
    """For each day in `days` (in order), the detector to judge it with, or why there is none.

    Each week of days gets a detector learned from the `LEARN_DAYS` landed days before the week's first
    (learning takes a few dozen milliseconds; a year-long backfill relearns fifty times, not 365); each
    judged day is remembered, once its caller has judged it, for the days after it in that week."""
    judged = sorted(days)
    for start in range(0, len(judged), RELEARN_DAYS):
        week = judged[start : start + RELEARN_DAYS]
        since = week[0] - timedelta(days=LEARN_DAYS)
        learned = [summary for day, summary in landed.items() if since <= day < week[0]]
        try:
            detector = BatchAnomalyDetector(shape).fit(learned)
        except NotEnoughBatches as too_few:
            yield from ((day, too_few) for day in week)
            continue
        for day in week:
            yield day, detector
            if day in landed:
                detector.remember(landed[day])
