"""Where failure alerts go, as the resource the alert sensors send through."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from unified_assets.alerts import DEFAULT_UI_URL, Alert, Delivery, KeepsAlerts, deliver
from unified_assets.lib.environment import bound_to_set_variables
from unified_assets.lib.storage import PlatformStorage


class AlertSink(ConfigurableResource):
    """Always the alerts log (the storage resource says where); a Slack-compatible incoming webhook too
    when its URL is set. The URL is a secret bound through `EnvVar`: the UI shows the variable's name,
    and errors and logs show only the webhook's scheme and host."""

    ENV_VARS: ClassVar[dict[str, str]] = {
        "slack_webhook_url": "UNIFIED_ASSETS_ALERTS_SLACK_WEBHOOK_URL",
        "ui_base_url": "UNIFIED_ASSETS_DAGSTER_UI_URL",
    }

    storage: PlatformStorage = Field(description="Where the alerts log is kept.")
    slack_webhook_url: str = Field(
        default="", description="Slack incoming-webhook URL (a secret). Empty: the alerts log only."
    )
    ui_base_url: str = Field(
        default=DEFAULT_UI_URL,
        description="The Dagster UI's address, for a link to the run in each alert. Empty: no link.",
    )

    @classmethod
    def from_environment(cls, storage: PlatformStorage, **overrides: Any) -> AlertSink:
        """Bind each field whose environment variable is set to that variable through `EnvVar`."""
        bound = bound_to_set_variables(cls.ENV_VARS)
        return cls(storage=storage, **{**bound, **overrides})

    def alerts_log(self) -> KeepsAlerts:
        return self.storage.alerts_log()

    def run_url(self, run_id: str) -> str:
        base = self.ui_base_url.strip().rstrip("/")
        return f"{base}/runs/{run_id}" if base else ""

    def send(self, alert: Alert, log: logging.Logger) -> Delivery:
        """Record the alert and post it; `Delivery.delivered` is False when the webhook did not take it."""
        return deliver(alert, self.alerts_log(), self.slack_webhook_url, log)
