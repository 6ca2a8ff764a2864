"""The credentials the simulated vendors accept; the demo set needs no setup."""

from __future__ import annotations

import random
import secrets
import string
from dataclasses import dataclass, fields

ENV_PREFIX = "UNIFIED_ASSETS_"


@dataclass(frozen=True, repr=False)
class SimCredentials:
    """QuickBooks realm and OAuth2 client, Coupa API key, Zendesk agent e-mail and API token, and the
    keys the simulated vendors sign their webhooks with."""

    realm_id: str
    qbo_client_id: str
    qbo_client_secret: str
    qbo_refresh_token: str
    coupa_api_key: str
    zendesk_email: str
    zendesk_api_token: str
    zendesk_webhook_secret: str = ""
    accounting_webhook_key: str = ""

    def __repr__(self) -> str:
        shown = f"realm_id={self.realm_id!r}, zendesk_email={self.zendesk_email!r}"
        return f"SimCredentials({shown}, secrets=<hidden>)"

    @classmethod
    def demo(cls) -> SimCredentials:
        """Fixed, public demo values: fine for a loopback simulator, never for anything real."""
        return cls(
            realm_id="9341453050298143",
            qbo_client_id="ABsimDemoClientId0000000000000000000000000000000",
            qbo_client_secret="simDemoClientSecret000000000000000000000",
            qbo_refresh_token="AB11simDemoRefreshToken000000000000000000000000",
            coupa_api_key="simdemo0coupa0api0key0000000000000000000",
            zendesk_email="sync@unified-assets.example",
            zendesk_api_token="simDemoZendeskApiToken0000000000000000000",
            zendesk_webhook_secret="simDemoZendeskWebhookSigningSecret000000",
            accounting_webhook_key="simDemoAccountingWebhookKey0000000000000",
        )

    @classmethod
    def generate(cls, seed: int | None = None) -> SimCredentials:
        """Random credentials (reproducible from `seed`), e.g. to check nothing logs them."""
        source = random.Random(seed) if seed is not None else secrets.SystemRandom()
        alphabet = string.ascii_letters + string.digits

        def token(length: int, prefix: str = "") -> str:
            return prefix + "".join(source.choice(alphabet) for _ in range(length))

        return cls(
            realm_id="".join(source.choice(string.digits) for _ in range(16)).lstrip("0") or "1",
            qbo_client_id=token(48, "AB"),
            qbo_client_secret=token(40),
            qbo_refresh_token=token(46, "AB11"),
            coupa_api_key=token(40),
            zendesk_email=f"{token(8).lower()}@unified-assets.example",
            zendesk_api_token=token(40),
            zendesk_webhook_secret=token(40),
            accounting_webhook_key=token(40),
        )

    def env_lines(self, base_urls: dict[str, str]) -> list[str]:
        """`NAME=value` lines pointing the platform's connectors at this simulator."""
        values = {
            "ACCOUNTING_BASE_URL": base_urls["accounting"],
            "ACCOUNTING_TOKEN_URL": f"{base_urls['accounting']}/oauth2/v1/tokens/bearer",
            "ACCOUNTING_REALM_ID": self.realm_id,
            "ACCOUNTING_CLIENT_ID": self.qbo_client_id,
            "ACCOUNTING_CLIENT_SECRET": self.qbo_client_secret,
            "ACCOUNTING_REFRESH_TOKEN": self.qbo_refresh_token,
            "PURCHASING_BASE_URL": base_urls["purchasing"],
            "PURCHASING_API_KEY": self.coupa_api_key,
            "SUPPORT_BASE_URL": base_urls["support"],
            "SUPPORT_EMAIL": self.zendesk_email,
            "SUPPORT_API_TOKEN": self.zendesk_api_token,
            "SUPPORT_WEBHOOK_SECRET": self.zendesk_webhook_secret,
            "ACCOUNTING_WEBHOOK_KEY": self.accounting_webhook_key,
        }
        return [f"{ENV_PREFIX}{name}={value}" for name, value in values.items()]

    def secret_values(self) -> list[str]:
        """Every value that must never appear in a log line (for tests that check)."""
        return [
            getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("realm_id", "zendesk_email")
        ]
