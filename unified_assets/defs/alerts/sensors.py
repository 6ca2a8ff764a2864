"""Sensors that tell a person when something failed: a run, or an asset check that did not pass.

Both hand an `Alert` (asset, run, first error line, link to the run) to the `alert_sink` resource, which
appends it to the alerts log and, when a Slack webhook is configured, posts it there
(`unified_assets.alerts`).

`run_failure_alerts` is Dagster's run-failure sensor over every job of this code location, asset jobs
included (no `monitored_jobs`): Dagster keeps its cursor and hands it each failed run once.

`failed_check_alerts` keeps its own cursor. It reads check evaluations run by run, as runs end: the run-end
events are in the instance's global index on every storage, while a cursor over evaluation events themselves
is not supported by the default SQLite storage (run-sharded: `get_event_records` with a storage-id cursor
raises there). So a failed check is alerted when the run that evaluated it ends, successful or not. The
cursor moves past an evaluation only once its alert is delivered; one the webhook did not take is retried on
the next tick (it is already in the alerts log, which records an alert once).
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    BoolMetadataValue,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    EventLogRecord,
    FloatMetadataValue,
    IntMetadataValue,
    MetadataValue,
    RunFailureSensorContext,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TextMetadataValue,
    run_failure_sensor,
    sensor,
)
from dagster_shared.error import SerializableErrorInfo  # the type of an event's `error`

from unified_assets.alerts import CHECK_FAILED, RUN_FAILURE, Alert, first_error_line
from unified_assets.defs.alerts.sink import AlertSink

RUN_ENDS = (
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELED,
)
RUN_ENDS_PER_TICK = 25
ALERTS_PER_TICK = 20  # a webhook post may take seconds; a tick has about a minute
METADATA_SHOWN = 3
# dbt puts these ids on every test result; they say nothing about what failed.
METADATA_IDENTIFIERS = frozenset({"unique_id", "invocation_id"})


@run_failure_sensor(
    name="run_failure_alerts",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Alerts when a run of this code location fails: the failed assets, the run and the first error "
        "line, to the alerts log and, when UNIFIED_ASSETS_ALERTS_SLACK_WEBHOOK_URL is set, to Slack."
    ),
)
def run_failure_alerts(context: RunFailureSensorContext, alert_sink: AlertSink):
    alert = run_failure_alert(context, alert_sink)
    delivery = alert_sink.send(alert, context.log)
    if not delivery.delivered:
        # Returning stops this tick: a webhook that is down costs its retry budget once per tick, not once
        # per failed run. Dagster's cursor still moves past this run; the alert is in the alerts log.
        return SkipReason(delivery.problem)
    context.log.info(f"alerted {delivery.sinks}: {alert.summary()}")
    return None  # the next failed run, if any, is handled in this tick


def run_failure_alert(context: RunFailureSensorContext, alert_sink: AlertSink) -> Alert:
    """The failed run as an alert: the assets of its failed steps (or its selection), its first error."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    errors = [getattr(event.event_specific_data, "error", None) for event in failures]
    run_error = getattr(context.failure_event.event_specific_data, "error", None)
    error = next(
        (line for line in map(error_line, [*errors, run_error]) if line),
        first_error_line(context.failure_event.message) or "the run failed",
    )
    failed_steps = {event.step_key for event in failures if event.step_key}
    return Alert(
        key=f"{RUN_FAILURE}:{run.run_id}",
        kind=RUN_FAILURE,
        assets=failed_assets(context.instance, run, failed_steps),
        run_id=run.run_id,
        job_name=run.job_name,
        error=error,
        at=_run_end(context.instance, run.run_id),
        run_url=alert_sink.run_url(run.run_id),
        partition=run.tags.get("dagster/partition", ""),
    )


def error_line(error: SerializableErrorInfo | None) -> str:
    """The user's error, not Dagster's wrapper ("Error occurred while executing op ..."), in one line,
    with the exception's module path dropped: "SourceError: accounting ... page 3"."""
    while (
        error is not None and error.cause is not None and error.message.startswith("dagster._core.")
    ):
        error = error.cause
    if error is None:
        return ""
    line = first_error_line(error.message)
    name, separator, rest = line.partition(": ")
    if separator and "." in name and " " not in name:
        return f"{name.rsplit('.', 1)[-1]}: {rest}"
    return line


def failed_assets(instance: DagsterInstance, run: DagsterRun, steps: set[str]) -> tuple[str, ...]:
    """The assets of the failed steps (a check's step names its asset), within what the run selected;
    the run's selection when no failed step names one (the run failed before or between steps)."""
    selected = set(run.asset_selection or ()) | {
        key.asset_key for key in run.asset_check_selection or ()
    }
    keys: set[AssetKey] = set()
    if steps and run.execution_plan_snapshot_id:
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        for step in plan.steps:
            if step.key not in steps:
                continue
            for output in step.outputs:
                properties = output.properties
                if properties is not None and properties.asset_key is not None:
                    keys.add(properties.asset_key)
                elif properties is not None and properties.asset_check_key is not None:
                    keys.add(properties.asset_check_key.asset_key)
    if selected:
        keys = (keys & selected) or selected
    return tuple(sorted(key.to_user_string() for key in keys))


def _run_end(instance: DagsterInstance, run_id: str) -> str:
    record = instance.get_run_record_by_id(run_id)
    end = record.end_time if record is not None and record.end_time else None
    return _utc(end if end is not None else datetime.now(UTC).timestamp())


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ChecksCursor:
    """How far `failed_check_alerts` has read: every run that ended up to `run_end` (a storage id of the
    instance's run-status index), and within the next run, `run_id`, its evaluations up to `evaluation`."""

    run_end: int
    run_id: str = ""
    evaluation: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ChecksCursor":
        values = json.loads(text)
        return cls(int(values["run_end"]), str(values["run_id"]), int(values["evaluation"]))


@dataclass
class Reading:
    """What one tick read and alerted, for its skip reason."""

    cursor: ChecksCursor
    runs: int = 0
    evaluations: int = 0
    alerted: int = 0
    problem: str = ""
    more: bool = False  # stopped at ALERTS_PER_TICK

    def summary(self) -> str:
        read = (
            f"read {_count(self.evaluations, 'check evaluation')} in "
            f"{_count(self.runs, 'ended run')}"
        )
        alerted = _count(self.alerted, "failed check")
        if self.problem:
            return f"{read}; alerted {alerted}, then: {self.problem}; retrying next tick"
        if self.alerted:
            return f"{read}; alerted {alerted}" + ("; more next tick" if self.more else "")
        if not self.runs:
            return f"{read}: no run has ended since the last tick"
        return f"{read}; none failed"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


@sensor(
    name="failed_check_alerts",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Alerts once for every asset check evaluation that did not pass (WARN or ERROR), when its run "
        "ends: the asset, the check, what it found, the run; to the alerts log and, when "
        "UNIFIED_ASSETS_ALERTS_SLACK_WEBHOOK_URL is set, to Slack."
    ),
)
def failed_check_alerts(context: SensorEvaluationContext, alert_sink: AlertSink):
    cursor = _read_cursor(context)
    if cursor is None:
        start = ChecksCursor(run_end=_newest_run_end(context.instance))
        return SensorResult(
            skip_reason="first tick: checks evaluated in runs that end from now on will be alerted",
            cursor=start.to_json(),
        )
    reading = alert_failed_checks(context, alert_sink, cursor)
    return SensorResult(skip_reason=reading.summary(), cursor=reading.cursor.to_json())


def alert_failed_checks(
    context: SensorEvaluationContext, alert_sink: AlertSink, cursor: ChecksCursor
) -> Reading:
    """Alert the failed evaluations of the runs that ended after `cursor`, oldest first, stopping at the
    first alert the webhook did not take (the cursor stays before it) or after `ALERTS_PER_TICK`."""
    reading = Reading(cursor)
    for run_end in _run_ends_after(context.instance, cursor.run_end):
        run_id, job_name = run_end.event_log_entry.run_id, run_end.event_log_entry.job_name or ""
        handled = reading.cursor.evaluation if reading.cursor.run_id == run_id else -1
        reading.runs += 1
        for record in _evaluations(context.instance, run_id, after=handled):
            evaluation = _evaluation(record)
            if not evaluation.passed:
                alert = check_alert(record, evaluation, run_id, job_name, alert_sink)
                if not _alerted(context, alert_sink, alert, reading):
                    return reading
            reading.evaluations += 1
            reading.cursor = ChecksCursor(reading.cursor.run_end, run_id, record.storage_id)
        reading.cursor = ChecksCursor(run_end.storage_id)
    return reading


def _alerted(
    context: SensorEvaluationContext, alert_sink: AlertSink, alert: Alert, reading: Reading
) -> bool:
    """Deliver one alert; False when this tick must stop before it (budget spent, or not delivered)."""
    if reading.alerted == ALERTS_PER_TICK:
        reading.more = True
        return False
    delivery = alert_sink.send(alert, context.log)
    if not delivery.delivered:
        reading.problem = delivery.problem
        return False
    reading.alerted += 1
    return True


def check_alert(
    record: EventLogRecord,
    evaluation: AssetCheckEvaluation,
    run_id: str,
    job_name: str,
    alert_sink: AlertSink,
) -> Alert:
    return Alert(
        key=f"{CHECK_FAILED}:{run_id}:{record.storage_id}",
        kind=CHECK_FAILED,
        assets=(evaluation.asset_key.to_user_string(),),
        run_id=run_id,
        job_name=job_name,
        error=check_finding(evaluation),
        at=_utc(record.event_log_entry.timestamp),
        run_url=alert_sink.run_url(run_id),
        check=evaluation.check_name,
        severity=evaluation.severity.value,
        partition=evaluation.partition or "",
    )


def check_finding(evaluation: AssetCheckEvaluation) -> str:
    """What the check found, in one line: its description, else its first few plain metadata values."""
    if line := first_error_line(evaluation.description):
        return line
    shown = [
        f"{label}: {value.value}"
        for label, value in evaluation.metadata.items()
        if label not in METADATA_IDENTIFIERS and _is_plain(value)
    ]
    return first_error_line("; ".join(shown[:METADATA_SHOWN])) or "the check did not pass"


def _is_plain(value: MetadataValue) -> bool:
    return isinstance(
        value, TextMetadataValue | IntMetadataValue | FloatMetadataValue | BoolMetadataValue
    )


def _read_cursor(context: SensorEvaluationContext) -> ChecksCursor | None:
    if not context.cursor:
        return None
    try:
        return ChecksCursor.from_json(context.cursor)
    except (ValueError, KeyError, TypeError):
        context.log.warning(
            f"ignoring an unreadable cursor {context.cursor[:80]!r}; alerting from the next run end on"
        )
        return None


def _newest_run_end(instance: DagsterInstance) -> int:
    newest = [
        instance.fetch_run_status_changes(event_type, limit=1, ascending=False).records
        for event_type in RUN_ENDS
    ]
    return max((records[0].storage_id for records in newest if records), default=-1)


def _run_ends_after(instance: DagsterInstance, after: int) -> Sequence[EventLogRecord]:
    """Run-end events after `after`, oldest first, across success, failure and cancellation. When one
    kind has more than a page, only events up to its page's last are returned, so none is skipped."""
    records: list[EventLogRecord] = []
    horizon: int | None = None
    for event_type in RUN_ENDS:
        page = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type, after_storage_id=after),
            limit=RUN_ENDS_PER_TICK,
            ascending=True,
        )
        records.extend(page.records)
        if page.has_more and page.records:
            last = page.records[-1].storage_id
            horizon = last if horizon is None else min(horizon, last)
    records.sort(key=lambda record: record.storage_id)
    return [record for record in records if horizon is None or record.storage_id <= horizon]


def _evaluation(record: EventLogRecord) -> AssetCheckEvaluation:
    event = record.event_log_entry.dagster_event
    assert event is not None and isinstance(event.event_specific_data, AssetCheckEvaluation)
    return event.event_specific_data


def _evaluations(instance: DagsterInstance, run_id: str, after: int) -> list[EventLogRecord]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return [record for record in records if record.storage_id > after]
