"""Failure alerts: the alerts log, the Slack webhook client, and both sensors against a real instance.

The sensors run against `DagsterInstance.local_temp` (SQLite, run-sharded: what `dagster dev` uses) and,
for the check sensor, the in-memory instance too, with runs that really fail and checks that really do
not pass. The webhook is a tiny HTTP server on a loopback port.
"""

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    SkipReason,
    asset,
    asset_check,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from unified_assets.alerts import (
    CHECK_FAILED,
    RUN_FAILURE,
    Alert,
    AlertDeliveryError,
    AlertsInBucket,
    AlertsLog,
    SlackWebhook,
    deliver,
    first_error_line,
)
from unified_assets.defs.alerts import sensors as sensors_module
from unified_assets.defs.alerts.sensors import failed_check_alerts, run_failure_alerts
from unified_assets.defs.alerts.sink import AlertSink
from unified_assets.lib.storage import PlatformStorage
from unified_assets.places import S3Prefix
from unified_assets.sources.http import HttpPolicy
from unified_assets_tests.support.services import cluster_storage

SECRET_PATH = "/services/T0000/B0000/s3cr3tT0ken"
FAST = HttpPolicy(
    connect_timeout_s=1.0,
    read_timeout_s=2.0,
    max_retries=2,
    backoff_factor_s=0.01,
    backoff_max_s=0.05,
    backoff_jitter_s=0.0,
    retry_after_max_s=2,
)


def an_alert(**changes) -> Alert:
    alert = Alert(
        key="run failure:0123456789abcdef",
        kind=RUN_FAILURE,
        assets=("raw/invoices",),
        run_id="0123456789abcdef",
        job_name="daily_extracts",
        error="SourceError: accounting <QuickBooks> & co answered HTTP 500",
        at="2026-03-15T12:00:00Z",
        run_url="http://127.0.0.1:3000/runs/0123456789abcdef",
    )
    return replace(alert, **changes)


# --- first_error_line -------------------------------------------------------------------------------------


def test_first_error_line_skips_blank_lines_and_keeps_one_line():
    assert first_error_line("\n  \nValueError: boom\nsecond line\n") == "ValueError: boom"
    assert first_error_line(None) == first_error_line("  \n") == ""


def test_first_error_line_of_a_traceback_is_the_exception_not_the_header():
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    raise KeyError('day')\n"
        "KeyError: 'day'\n"
    )
    assert first_error_line(traceback) == "KeyError: 'day'"


def test_first_error_line_is_cut_to_its_limit():
    line = first_error_line("x" * 500)
    assert len(line) == 200 and line.endswith("…")


# --- the alerts log ---------------------------------------------------------------------------------------


def test_alerts_log_appends_whole_lines_and_reads_them_back(tmp_path):
    log = AlertsLog(tmp_path / "alerts" / "alerts.jsonl")
    first, second = an_alert(), an_alert(key="check failed:r:7", kind=CHECK_FAILED, check="c")
    assert log.append(first) and log.append(second)
    assert log.read() == [first, second]
    lines = log.path.read_text().splitlines()
    assert json.loads(lines[0])["message"] == first.summary()  # readable with `tail`


def test_alerts_log_records_an_alert_once(tmp_path):
    log = AlertsLog(tmp_path / "alerts.jsonl")
    assert log.append(an_alert())
    assert not log.append(an_alert())  # a retried delivery of the same alert
    assert len(log.read()) == 1


def test_a_torn_last_line_is_skipped_and_not_glued_to_the_next_alert(tmp_path):
    log = AlertsLog(tmp_path / "alerts.jsonl")
    log.append(an_alert())
    whole = (json.dumps(an_alert(key="second").to_record()) + "\n").encode()
    with log.path.open("ab") as handle:
        handle.write(whole[: len(whole) // 2])  # a writer that died mid-line
    assert [alert.key for alert in log.read()] == [an_alert().key]
    log.append(an_alert(key="third"))
    assert [alert.key for alert in log.read()] == [an_alert().key, "third"]


def test_alerts_in_the_bucket_are_recorded_once_by_any_host_and_read_oldest_first(
    tmp_path, s3_server, caplog
):
    url = f"s3://{s3_server.create_bucket()}/alerts"
    one_host, another_host = (
        AlertsInBucket(S3Prefix(url, s3_server.settings(), tmp_path / host)) for host in "ab"
    )
    later = an_alert(key="check failed:r:7", at="2026-03-15T12:05:00Z")
    assert another_host.append(later) and one_host.append(an_alert())
    assert not another_host.append(an_alert()), "the same alert from another host"
    one_host.place.put_bytes(one_host.place.join("not-an-alert.json"), b"{")
    with caplog.at_level(logging.WARNING):
        assert another_host.read() == [an_alert(), later]
    assert "not-an-alert.json" in caplog.text


def test_a_line_that_is_not_an_alert_is_skipped_with_a_warning(tmp_path, caplog):
    log = AlertsLog(tmp_path / "alerts.jsonl")
    log.path.write_text("not json\n")
    log.append(an_alert())
    with caplog.at_level(logging.WARNING):
        assert log.read() == [an_alert()]
    assert "alerts.jsonl:1" in caplog.text


# --- the Slack webhook ------------------------------------------------------------------------------------


@dataclass
class FakeSlack:
    """A webhook that answers from `replies` (then 200 "ok") and keeps what it received."""

    port: int = 0
    replies: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SECRET_PATH}"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.received.append(
                {"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)}
            )
            status, headers, text = fake.replies.pop(0) if fake.replies else (200, {}, "ok")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def test_slack_receives_its_incoming_webhook_json(slack):
    SlackWebhook(slack.url, FAST).post(an_alert())
    [request] = slack.received
    assert request["path"] == SECRET_PATH and request["type"] == "application/json"
    payload = request["body"]
    assert "raw/invoices" in payload["text"] and "0123456" in payload["text"]
    section = payload["blocks"][0]["text"]
    assert section["type"] == "mrkdwn"
    assert "*Asset:* `raw/invoices`" in section["text"]
    assert "<http://127.0.0.1:3000/runs/0123456789abcdef|01234567>" in section["text"]
    # Slack reads < > & as markup: text from an error is escaped
    assert "accounting &lt;QuickBooks&gt; &amp; co answered HTTP 500" in section["text"]


def test_slack_rate_limit_is_retried_after_its_retry_after(slack):
    slack.replies = [(429, {"Retry-After": "1"}, "rate_limited"), (429, {"Retry-After": "0"}, "")]
    started = time.monotonic()
    SlackWebhook(slack.url, FAST).post(an_alert())
    assert time.monotonic() - started >= 0.9  # waited as asked
    assert len(slack.received) == 3


def test_a_slack_server_error_is_retried(slack):
    slack.replies = [(503, {}, "unavailable"), (503, {}, "unavailable")]
    SlackWebhook(slack.url, FAST).post(an_alert())
    assert len(slack.received) == 3  # two retries of a POST


def test_a_final_failure_names_the_host_but_never_the_token(slack):
    slack.replies = [(503, {}, "unavailable")] * 3
    with pytest.raises(AlertDeliveryError) as raised:
        SlackWebhook(slack.url, FAST).post(an_alert())
    message = str(raised.value)
    assert f"http://127.0.0.1:{slack.port}" in message and "HTTP 503" in message
    assert "services" not in message and "s3cr3t" not in message


def test_a_refused_alert_is_not_retried_and_says_why(slack):
    slack.replies = [(404, {}, "no_service")]
    with pytest.raises(AlertDeliveryError, match="HTTP 404 no_service"):
        SlackWebhook(slack.url, FAST).post(an_alert())
    assert len(slack.received) == 1


def test_an_unreachable_webhook_leaks_its_token_nowhere(caplog):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]  # closed once the block ends: connections are refused
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    with caplog.at_level(logging.DEBUG), pytest.raises(AlertDeliveryError) as raised:
        SlackWebhook(url, FAST).post(an_alert())
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "Retrying" in caplog.text  # urllib3 did log its retries...
    assert "s3cr3t" not in caplog.text + str(raised.value)  # ...with the path hidden
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def test_a_webhook_that_fails_leaves_the_alert_in_the_log_and_warns(slack, tmp_path, caplog):
    slack.replies = [(404, {}, "no_service")]
    log = AlertsLog(tmp_path / "alerts.jsonl")
    with caplog.at_level(logging.WARNING):
        delivery = deliver(an_alert(), log, slack.url, logging.getLogger("test"), FAST)
    assert not delivery.delivered
    assert log.read() == [an_alert()]
    assert f"127.0.0.1:{slack.port}" in caplog.text and "s3cr3t" not in caplog.text


def test_a_malformed_webhook_url_is_reported_without_being_shown(tmp_path):
    log = AlertsLog(tmp_path / "alerts.jsonl")
    url = "hooks.slack.com" + SECRET_PATH  # no scheme
    delivery = deliver(an_alert(), log, url, logging.getLogger("test"))
    assert not delivery.delivered and "not an http(s) URL" in delivery.problem
    assert "s3cr3t" not in delivery.problem and log.read() == [an_alert()]


def test_without_a_webhook_the_log_is_the_sink(tmp_path):
    log = AlertsLog(tmp_path / "alerts.jsonl")
    delivery = deliver(an_alert(), log, "", logging.getLogger("test"))
    assert delivery.delivered and log.read() == [an_alert()]


# --- the run-failure sensor -------------------------------------------------------------------------------


@asset(key_prefix="raw")
def fragile():
    raise ValueError("the source answered 500\nwith a second line")


@asset(key_prefix="raw")
def sturdy():
    return 1


def dagster_home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return home


@pytest.fixture
def instance(tmp_path) -> Iterator[DagsterInstance]:
    with DagsterInstance.local_temp(str(dagster_home(tmp_path))) as local:
        yield local


def sink_at(storage: PlatformStorage, **fields) -> AlertSink:
    return AlertSink(storage=storage, **fields)


def test_a_failed_run_is_alerted_once_naming_the_failed_asset_and_error(instance, storage):
    sink = sink_at(storage)
    # The sink holds the storage resource: a nested resource is opened, so the context is entered.
    with build_sensor_context(instance=instance, resources={"alert_sink": sink}) as first:
        assert "Initiating" in run_failure_alerts.evaluate_tick(first).skip_message
    failed = materialize([fragile, sturdy], instance=instance, raise_on_error=False)
    assert not failed.success

    with build_sensor_context(
        instance=instance, resources={"alert_sink": sink}, cursor=first.cursor
    ) as tick:
        run_failure_alerts.evaluate_tick(tick)
    [alert] = sink.alerts_log().read()
    assert alert.kind == RUN_FAILURE
    assert alert.assets == ("raw/fragile",)  # the failed step's asset, not the whole run
    assert alert.run_id == failed.run_id
    assert (
        alert.error == "ValueError: the source answered 500"
    )  # the user's error, not Dagster's wrapper
    assert alert.run_url == f"http://127.0.0.1:3000/runs/{failed.run_id}"

    with build_sensor_context(
        instance=instance, resources={"alert_sink": sink}, cursor=tick.cursor
    ) as again:
        run_failure_alerts.evaluate_tick(again)
    assert len(sink.alerts_log().read()) == 1


def test_a_run_failure_the_webhook_refuses_is_logged_and_ends_the_tick(instance, storage, slack):
    slack.replies = [(404, {}, "no_service")]
    failed = materialize([fragile], instance=instance, raise_on_error=False)
    sink = sink_at(storage, slack_webhook_url=slack.url)
    with build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failed.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=failed.dagster_run,
        resources={"alert_sink": sink},
    ) as context:
        result = run_failure_alerts(context)
    assert isinstance(result, SkipReason)
    assert f"127.0.0.1:{slack.port}" in result.skip_message and "s3cr3t" not in result.skip_message
    assert [alert.run_id for alert in sink.alerts_log().read()] == [failed.run_id]


# --- the failed-check sensor ------------------------------------------------------------------------------


@asset
def orders():
    return 1


@asset_check(asset=orders)
def has_rows():
    return AssetCheckResult(passed=True)


@asset_check(asset=orders)
def no_negative_amounts():
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description="3 orders with a negative amount\nids: 1, 2, 3",
    )


@asset_check(asset=orders)
def ids_unique():
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        metadata={"unique_id": "test.x", "status": "fail", "failed_row_count": 2},
    )


ALL_CHECKS = [orders, has_rows, no_negative_amounts, ids_unique]


@pytest.fixture(params=["sqlite", "in-memory"])
def any_instance(request, tmp_path) -> Iterator[DagsterInstance]:
    if request.param == "in-memory":
        yield DagsterInstance.ephemeral()
        return
    with DagsterInstance.local_temp(str(dagster_home(tmp_path))) as local:
        yield local


def tick(instance: DagsterInstance, sink: AlertSink, cursor: str | None):
    with build_sensor_context(
        instance=instance, resources={"alert_sink": sink}, cursor=cursor
    ) as context:
        return failed_check_alerts.evaluate_tick(context)


def test_each_failed_check_is_alerted_once(any_instance, storage):
    sink = sink_at(storage)
    materialize(ALL_CHECKS, instance=any_instance)  # before the sensor's first tick: history
    first = tick(any_instance, sink, None)
    assert "first tick" in first.skip_message and not sink.alerts_log().read()

    run = materialize(ALL_CHECKS, instance=any_instance)
    second = tick(any_instance, sink, first.cursor)
    assert second.skip_message == (
        "read 3 check evaluations in 1 ended run; alerted 2 failed checks"
    )
    alerts = {alert.check: alert for alert in sink.alerts_log().read()}
    assert set(alerts) == {"no_negative_amounts", "ids_unique"}
    warn, error = alerts["no_negative_amounts"], alerts["ids_unique"]
    assert (warn.kind, warn.assets, warn.run_id) == (CHECK_FAILED, ("orders",), run.run_id)
    assert (warn.severity, warn.error) == ("WARN", "3 orders with a negative amount")
    assert error.severity == "ERROR"  # no description: what the metadata says, without dbt's ids
    assert {"status: fail", "failed_row_count: 2"} == set(error.error.split("; "))

    third = tick(any_instance, sink, second.cursor)
    assert third.skip_message.endswith("no run has ended since the last tick")
    assert third.cursor == second.cursor and len(sink.alerts_log().read()) == 2

    materialize([orders, has_rows], instance=any_instance)
    fourth = tick(any_instance, sink, third.cursor)
    assert fourth.skip_message == "read 1 check evaluation in 1 ended run; none failed"


def test_an_undelivered_check_alert_keeps_the_cursor_and_is_retried(instance, storage, slack):
    assert_an_undelivered_check_alert_is_retried_and_logged_once(instance, storage, slack)


def test_in_the_cluster_profile_the_alerts_log_is_in_the_bucket(
    instance, tmp_path, postgres_database, s3_server, slack
):
    storage = cluster_storage(tmp_path / "scratch", postgres_database, s3_server)
    assert_an_undelivered_check_alert_is_retried_and_logged_once(instance, storage, slack)
    alerts = storage.bucket_place("alerts")
    assert len(alerts.list_under(alerts.url)) == 1
    assert not (tmp_path / "scratch" / "alerts").exists()


def assert_an_undelivered_check_alert_is_retried_and_logged_once(instance, storage, slack) -> None:
    first = tick(instance, sink_at(storage), None)
    run = materialize([orders, no_negative_amounts], instance=instance)

    slack.replies = [(404, {}, "no_service")]
    refused = tick(instance, sink_at(storage, slack_webhook_url=slack.url), first.cursor)
    assert refused.cursor == first.cursor  # nothing is lost...
    assert f"127.0.0.1:{slack.port}" in refused.skip_message and "retrying" in refused.skip_message
    assert [alert.run_id for alert in sink_at(storage).alerts_log().read()] == [run.run_id]

    delivered = tick(instance, sink_at(storage, slack_webhook_url=slack.url), refused.cursor)
    assert "alerted 1 failed check" in delivered.skip_message
    assert len(slack.received) == 2  # refused once, then taken
    assert len(sink_at(storage).alerts_log().read()) == 1  # ...and logged once


def test_the_webhook_comes_from_the_environment(instance, storage, slack, monkeypatch):
    monkeypatch.setenv("UNIFIED_ASSETS_ALERTS_SLACK_WEBHOOK_URL", slack.url)
    sink = AlertSink.from_environment(storage)
    first = tick(instance, sink, None)
    materialize([orders, ids_unique], instance=instance)
    tick(instance, sink, first.cursor)
    [request] = slack.received
    assert "ids_unique" in request["body"]["text"]


def test_a_tick_stops_at_its_alert_budget_and_resumes_inside_the_run(
    instance, storage, monkeypatch
):
    monkeypatch.setattr(sensors_module, "ALERTS_PER_TICK", 1)
    sink = sink_at(storage)
    first = tick(instance, sink, None)
    materialize(ALL_CHECKS, instance=instance)
    partial = tick(instance, sink, first.cursor)
    assert partial.skip_message.endswith("more next tick") and len(sink.alerts_log().read()) == 1
    rest = tick(instance, sink, partial.cursor)
    assert "alerted 1 failed check" in rest.skip_message
    assert len({alert.check for alert in sink.alerts_log().read()}) == 2
    assert "no run has ended" in tick(instance, sink, rest.cursor).skip_message


def test_an_unreadable_cursor_starts_over_from_now(instance, storage):
    materialize([orders, ids_unique], instance=instance)
    result = tick(instance, sink_at(storage), "not a cursor")
    assert "first tick" in result.skip_message and not sink_at(storage).alerts_log().read()


def test_the_alert_sensors_are_on_by_default_with_their_sink():
    from dagster import DefaultSensorStatus

    from unified_assets.definitions import defs

    for name in ("run_failure_alerts", "failed_check_alerts"):
        assert defs.resolve_sensor_def(name).default_status == DefaultSensorStatus.RUNNING
    assert isinstance(defs.resources["alert_sink"], AlertSink)
