"""Failure alerts: what a person is told when a run fails or a check does not pass, and where it goes.

An alert names the asset(s), the run and the first line of the error. Every alert is recorded in the alerts
log before anything else happens, so it survives a sink that is down: one JSON line each in
`<data>/alerts/alerts.jsonl` (the local profile), or one object each in the bucket (the cluster profile,
`AlertsInBucket`). When a Slack-compatible incoming webhook is configured, it is posted there too.

A webhook URL is a secret (Slack's carries its token in the path). Nothing here puts it into a message, an
exception or a log line: errors show only scheme and host, exceptions from the HTTP stack are never chained
(their text names the path), and urllib3's own log lines about the webhook have the path hidden.

Plain Python: the Dagster side (`unified_assets.sensors.alerts`) decides what failed and calls `deliver`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from unified_assets.durable import fsync_directory
from unified_assets.sources.http import RETRYABLE_STATUSES, HttpPolicy

if TYPE_CHECKING:
    from unified_assets.places import S3Prefix

log = logging.getLogger(__name__)

RUN_FAILURE = "run failure"
CHECK_FAILED = "check failed"
DEFAULT_UI_URL = "http://127.0.0.1:3000"  # where `dagster dev` serves the UI
LINE_LIMIT = 200
ASSETS_SHOWN = 10

# A sensor tick has about a minute: one delivery, retries included, must end well inside it.
SLACK_POLICY = HttpPolicy(
    connect_timeout_s=3.0,
    read_timeout_s=5.0,
    max_retries=3,
    backoff_factor_s=0.5,
    backoff_max_s=4.0,
    backoff_jitter_s=0.25,
    retry_after_max_s=10,
)


class AlertDeliveryError(RuntimeError):
    """A sink did not take an alert; the message names the sink by scheme and host only."""


def first_error_line(text: str | None, limit: int = LINE_LIMIT) -> str:
    """The line of an error message a person needs first: the first non-blank line, or for a Python
    traceback the exception line after the frames; cut to `limit` characters so an alert stays one line."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    if lines and lines[0].strip().startswith("Traceback (most recent call last)"):
        lines = [line for line in lines[1:] if not line[:1].isspace()] or lines
    if not lines:
        return ""
    line = lines[0].strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Alert:
    """One thing a person should know failed. `key` identifies it (a run, or a run and its check event) so
    an alert retried after a failed delivery is recorded once."""

    key: str
    kind: str  # RUN_FAILURE or CHECK_FAILED
    assets: tuple[str, ...]  # asset keys as "raw/invoices"
    run_id: str
    job_name: str
    error: str  # the first error line, or what the check found
    at: str  # when it failed, UTC ISO 8601
    run_url: str = ""  # the run in the Dagster UI, when its address is known
    check: str = ""  # the check's name, for CHECK_FAILED
    severity: str = ""  # WARN or ERROR, for CHECK_FAILED
    partition: str = ""

    def assets_text(self) -> str:
        shown = ", ".join(self.assets[:ASSETS_SHOWN]) or "no asset"
        hidden = len(self.assets) - ASSETS_SHOWN
        return f"{shown} and {hidden} more" if hidden > 0 else shown

    def subject(self) -> str:
        """What failed, e.g. "check failed (WARN): raw/invoices no_uncastable_values [2026-03-01]"."""
        what = self.assets_text() + (f" {self.check}" if self.check else "")
        what += f" [{self.partition}]" if self.partition else ""
        label = f"{self.kind} ({self.severity})" if self.severity else self.kind
        return f"{label}: {what}"

    def summary(self) -> str:
        """The alert as one line a person can read in a log or a notification preview."""
        return f"{self.subject()}; run {self.run_id[:8]} ({self.job_name}): {self.error}"

    def to_record(self) -> dict[str, Any]:
        return {"at": self.at, "message": self.summary(), **asdict(self)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alert:
        known = {field.name for field in fields(cls)}
        values = {name: value for name, value in record.items() if name in known}
        values["assets"] = tuple(values.get("assets", ()))
        return cls(**values)


class KeepsAlerts(Protocol):
    """The sink that is always there: every alert recorded once, by its key."""

    where: str

    def append(self, alert: Alert) -> bool:
        """Record `alert` unless one with its key is recorded; True when it was written."""

    def read(self) -> list[Alert]:
        """Every alert recorded, oldest first."""


class AlertsLog:
    """Alerts appended one JSON line each to a file a person can `tail`; the sink that is always there.

    Each alert is one write of a whole line to a file opened for appending, flushed to disk before
    `append` returns. A line cut short by a crash is skipped when reading and never glued to the next one.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)

    def append(self, alert: Alert) -> bool:
        """Record `alert` unless an alert with its key is already recorded (alerts are few: the log is
        read to find out); True when it was written."""
        if self.holds(alert.key):
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        line = (json.dumps(alert.to_record(), ensure_ascii=False) + "\n").encode()
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_torn(descriptor):
                line = b"\n" + line  # keep a crashed writer's fragment on a line of its own
            _write_all(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            fsync_directory(self.path.parent)
        return True

    def read(self) -> list[Alert]:
        """Every alert recorded, oldest first. A last line without its newline is a write in progress
        or cut short, and is skipped; so is any other line that is not an alert, with a warning."""
        return self._read(warn=True)

    def holds(self, key: str) -> bool:
        return any(alert.key == key for alert in self._read(warn=False))

    def _read(self, warn: bool) -> list[Alert]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        alerts = []
        lines = text.split("\n")[:-1]  # what follows the last newline is "" or a torn line
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                alerts.append(Alert.from_record(json.loads(line)))
            except (ValueError, TypeError, AttributeError) as error:
                if warn:
                    log.warning(
                        f"{self.path}:{number}: skipped a line that is not an alert ({error})"
                    )
        return alerts


class AlertsInBucket:
    """Alerts as objects under a bucket prefix, one per alert, for hosts that share no folder.

    An alert's object is named by a digest of its key, so two sensor processes recording the same alert
    write the same object with the same content: recorded once whatever the timing, with no lock. Each is
    one upload, visible whole or not at all."""

    def __init__(self, place: S3Prefix):
        self.place = place
        self.where = place.url

    def append(self, alert: Alert) -> bool:
        location = self._location(alert.key)
        if self.place.exists(location):
            return False
        self.place.put_bytes(location, json.dumps(alert.to_record(), ensure_ascii=False).encode())
        return True

    def read(self) -> list[Alert]:
        """Every alert, oldest first; an object that is not an alert is skipped with a warning."""
        alerts = []
        for location in self.place.list_under(self.place.url):
            try:
                alerts.append(Alert.from_record(json.loads(self.place.get_bytes(location))))
            except (ValueError, TypeError, AttributeError) as error:
                log.warning(f"{location}: skipped an object that is not an alert ({error})")
        return sorted(alerts, key=lambda alert: (alert.at, alert.key))

    def _location(self, key: str) -> str:
        return self.place.join(hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def _ends_torn(descriptor: int) -> bool:
    size = os.fstat(descriptor).st_size
    return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"


def _write_all(descriptor: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(descriptor, view) :]


class SlackWebhook:
    """Posts alerts to a Slack incoming webhook (or anything that accepts its JSON), retrying what Slack
    asks to be retried: 429 after its Retry-After, and 5xx. A POST is retried too: a duplicate alert is
    better than a lost one."""

    def __init__(self, url: str, policy: HttpPolicy = SLACK_POLICY):
        parts = urlsplit(url.strip())
        port = f":{parts.port}" if parts.port else ""
        self.where = f"Slack webhook at {parts.scheme}://{parts.hostname or ''}{port}"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlertDeliveryError(
                f"the Slack webhook URL is not an http(s) URL with a host (scheme {parts.scheme!r}); "
                "e.g. https://hooks.slack.com/services/..."
            )
        self.url = url.strip()
        self.policy = policy
        self._secret = self.url[len(f"{parts.scheme}://{parts.netloc}") :]
        _hide_in_urllib3_logs(self._secret)
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=policy.retry().new(allowed_methods=frozenset({"POST"})))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def post(self, alert: Alert) -> None:
        """Deliver `alert`, or raise `AlertDeliveryError` saying why (never showing the URL)."""
        problem = self._send(slack_payload(alert))
        if problem:
            raise AlertDeliveryError(f"{self.where} did not take the alert: {problem}")

    def _send(self, payload: dict[str, Any]) -> str:
        # Exceptions from requests name the URL's path (the token): describe them here, raise nothing
        # chained to them.
        try:
            response = self.session.post(self.url, json=payload, timeout=self.policy.timeout)
        except requests.RequestException as error:
            return (
                f"no answer after {self.policy.max_retries} retries ({type(error).__name__}: "
                "connection failed or timed out)"
            )
        if response.status_code < 300:
            return ""
        if response.status_code in RETRYABLE_STATUSES:
            return f"HTTP {response.status_code} persisted after {self.policy.max_retries} retries"
        said = first_error_line(response.text, limit=100).replace(self._secret, "/<hidden>")
        return f"HTTP {response.status_code} {said}".rstrip()


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: `text` for notifications, a mrkdwn section for the channel."""
    run = f"`{_escape(alert.run_id[:8])}`"
    if alert.run_url:
        run = f"<{_escape(alert.run_url)}|{_escape(alert.run_id[:8])}>"
    lines = [
        f"*{_escape(alert.kind.capitalize())}*"
        + (f" ({alert.severity})" if alert.severity else ""),
        f"*Asset:* `{_escape(alert.assets_text())}`",
        *([f"*Check:* `{_escape(alert.check)}`"] if alert.check else []),
        *([f"*Partition:* `{_escape(alert.partition)}`"] if alert.partition else []),
        f"*Run:* {run} (job `{_escape(alert.job_name)}`)",
        f"*Error:* {_escape(alert.error)}",
    ]
    return {
        "text": _escape(alert.summary()),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(alert.at)}]},
        ],
    }


def _escape(text: str) -> str:
    """Slack reads &, < and > as markup; everything shown from an error message is escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Delivery:
    """Where an alert went. `delivered` is False when a configured webhook did not take it; it is in the
    alerts log either way, and `problem` says what happened."""

    alert: Alert
    sinks: str
    delivered: bool
    problem: str = ""


def deliver(
    alert: Alert,
    alerts_log: KeepsAlerts,
    webhook_url: str,
    logger: logging.Logger,
    policy: HttpPolicy = SLACK_POLICY,
) -> Delivery:
    """Record `alert` in the log first (it survives whatever happens next), then post it to the webhook
    when one is configured. A webhook that does not take it is a warning naming the sink by host."""
    alerts_log.append(alert)
    if not webhook_url.strip():
        return Delivery(alert, f"the alerts log {alerts_log.where}", delivered=True)
    try:
        webhook = SlackWebhook(webhook_url, policy)
    except AlertDeliveryError as error:
        return _undelivered(alert, alerts_log, "a Slack webhook", str(error), logger)
    sinks = f"the alerts log {alerts_log.where} and the {webhook.where}"
    try:
        webhook.post(alert)
    except AlertDeliveryError as error:
        return _undelivered(alert, alerts_log, sinks, str(error), logger)
    finally:
        webhook.close()
    return Delivery(alert, sinks, delivered=True)


def _undelivered(
    alert: Alert, alerts_log: KeepsAlerts, sinks: str, error: str, logger: logging.Logger
) -> Delivery:
    problem = f"{error}; the alert is in the alerts log {alerts_log.where}"
    logger.warning(problem)
    return Delivery(alert, sinks, delivered=False, problem=problem)


class _HiddenPath(logging.Filter):
    """Replaces secret URL paths in urllib3's log lines (it logs the path of every retried request)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "/<hidden>")
            record.msg, record.args = message, None
        return True


_hidden_paths = _HiddenPath()


def _hide_in_urllib3_logs(secret: str) -> None:
    if not secret.strip("/"):
        return
    _hidden_paths.secrets.add(secret)
    for name in ("urllib3.connectionpool", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if _hidden_paths not in logger.filters:
            logger.addFilter(_hidden_paths)
