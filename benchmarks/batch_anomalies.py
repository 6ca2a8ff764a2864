"""Benchmark: the batch anomaly score (`unified_assets.batch_anomalies`) on anomalies the simulator
injects (`saas_simulator.anomalies`), against the targets of issue 22:

- recall at least 0.9 over the injected kinds (a customer missing, amounts doubled, a field stuck, a
  SKU renamed, a day's volume halved), per source;
- at most one false alarm per 100 clean batches.

Each source's days are landed as a daily extraction would land them (the records updated that day, as
the API serves them two hours after the day ends, typed by the platform's own projection). From day
`LEARN_DAYS` on, every day is scored by the detector the check would judge it with
(`detectors_along`: learned from the `LEARN_DAYS` days before its week): once as served (a false alarm if
flagged) and once per kind with that kind injected (a catch if flagged).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from benchmarks.extraction import HISTORY_START, Options
from benchmarks.harness import Report
from saas_simulator.anomalies import applicable_kinds, inject
from saas_simulator.config import WorldConfig
from saas_simulator.world import World
from unified_assets.batch_anomalies import (
    LEARN_DAYS,
    SHAPES,
    BatchAnomalyDetector,
    BatchSummary,
    BatchVerdict,
    NotEnoughBatches,
    detectors_along,
    summarise,
)
from unified_assets.sources import coupa, quickbooks, zendesk

SOURCES = {
    "accounting": ("invoices", quickbooks.RAW_COLUMNS),
    "purchasing": ("purchase_orders", coupa.RAW_COLUMNS),
    "support": ("support_tickets", zendesk.RAW_COLUMNS),
}
EXTRACTED_AFTER_DAY_END = timedelta(hours=2)
RECALL_TARGET = 0.9
FALSE_ALARMS_PER_100_TARGET = 1.0
EXAMPLES = 3


@dataclass
class SourceEvaluation:
    table: str
    clean_batches: int = 0
    false_alarms: list[BatchVerdict] = field(default_factory=list)
    caught: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    missed: dict[str, list[BatchVerdict]] = field(default_factory=dict)

    def recall(self, kind: str) -> float:
        return self.caught[kind] / self.injected[kind] if self.injected[kind] else 1.0

    @property
    def overall_recall(self) -> float:
        return sum(self.caught.values()) / max(sum(self.injected.values()), 1)

    @property
    def false_alarms_per_100(self) -> float:
        return 100 * len(self.false_alarms) / max(self.clean_batches, 1)


def run_batch_anomalies(options: Options) -> Report:
    report = Report("batch_anomalies")
    world = World(getattr(WorldConfig, options.sim.world)(scale=options.sim.scale))
    first, last = date.fromisoformat(HISTORY_START), date.fromisoformat(options.last_day)
    report.facts["days"] = f"{first}..{last}, scored from day {LEARN_DAYS + 1}"
    for system in SOURCES:
        print(f"  {system} ...", flush=True)
        evaluation = evaluate_source(world, system, first, last, options.scratch)
        _record(report, evaluation)
    return report


def evaluate_source(
    world: World, system: str, first: date, last: date, scratch: Path
) -> SourceEvaluation:
    table, projection = SOURCES[system]
    shape = SHAPES[table]
    kinds = applicable_kinds(system)
    evaluation = SourceEvaluation(
        table, caught=dict.fromkeys(kinds, 0), injected=dict.fromkeys(kinds, 0)
    )
    evaluation.missed = {kind: [] for kind in kinds}
    scratch.mkdir(parents=True, exist_ok=True)
    # A directory of its own: two worlds evaluated side by side would otherwise land each other's days.
    with (
        tempfile.TemporaryDirectory(dir=scratch, prefix="anomalies-") as own,
        duckdb.connect() as con,
    ):
        land = Landing(con, projection, Path(own) / f"{system}.ndjson")
        served = dict(daily_records(world, system, first, last))
        batches = {day: summarise(land(records), shape, day) for day, records in served.items()}
        scored = [day for day in sorted(batches) if day >= first + timedelta(days=LEARN_DAYS)]
        for day, detector in detectors_along(scored, batches, shape):
            if isinstance(detector, NotEnoughBatches):
                raise detector
            _score_day(evaluation, detector, batches[day], served[day], land, system)
    return evaluation


def _score_day(
    evaluation: SourceEvaluation,
    detector: BatchAnomalyDetector,
    batch: BatchSummary,
    records: list[dict],
    land: Landing,
    system: str,
) -> None:
    evaluation.clean_batches += 1
    verdict = detector.score(batch)
    if verdict.anomalous:
        evaluation.false_alarms.append(verdict)
    for kind in evaluation.injected:
        altered = detector.score(
            summarise(land(inject(system, kind, records)), detector.shape, batch.day)
        )
        evaluation.injected[kind] += 1
        if altered.anomalous:
            evaluation.caught[kind] += 1
        else:
            evaluation.missed[kind].append(altered)


def daily_records(
    world: World, system: str, first: date, last: date
) -> Iterator[tuple[date, list]]:
    """Each day's records as a daily extraction receives them: updated that day, as served a little
    after the day ends (a record updated again later is still in its day's batch)."""
    day = first
    while day <= last:
        start = datetime.combine(day, time.min, UTC)
        end = start + timedelta(days=1)
        truth = world.ground_truth(
            system, as_of=end + EXTRACTED_AFTER_DAY_END, updated_from=start, updated_to=end
        )
        yield day, list(truth.record)
        day += timedelta(days=1)


class Landing:
    """Records typed by the platform's projection of their source, as its raw asset lands them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, projection: str, scratch: Path):
        self.con, self.projection, self.scratch = con, projection, scratch

    def __call__(self, records: list[dict]) -> pa.Table:
        if not records:  # a quiet day: no file to read, the same columns
            relation = "(select null::json as json where false)"
        else:
            self.scratch.write_text("".join(json.dumps(record) + "\n" for record in records))
            relation = f"read_json_objects('{self.scratch}', format = 'newline_delimited')"
        return self.con.execute(f"select {self.projection} from {relation}").to_arrow_table()


def _record(report: Report, evaluation: SourceEvaluation) -> None:
    table = evaluation.table
    for kind in evaluation.injected:
        report.add(f"{table} recall {kind}", "share", evaluation.recall(kind))
    report.add(f"{table} recall", "share", evaluation.overall_recall)
    report.add(f"{table} false alarms per 100", "count", evaluation.false_alarms_per_100)
    report.add(f"{table} missed share", "share", 1 - evaluation.overall_recall)
    report.target(
        f"{table} missed share",
        round(1 - RECALL_TARGET, 6),
        f"{table}: recall at least {RECALL_TARGET} over the injected kinds",
    )
    report.target(
        f"{table} false alarms per 100",
        FALSE_ALARMS_PER_100_TARGET,
        f"{table}: at most {FALSE_ALARMS_PER_100_TARGET:g} false alarm per 100 clean batches",
    )
    report.facts[f"{table}.clean_batches"] = evaluation.clean_batches
    report.facts[f"{table}.false_alarms"] = [v.describe() for v in evaluation.false_alarms]
    report.facts[f"{table}.missed_examples"] = {
        kind: [v.describe() for v in missed[:EXAMPLES]]
        for kind, missed in evaluation.missed.items()
    }
