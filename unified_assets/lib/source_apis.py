"""Connections to the three source systems, as Dagster resources.

Each resource holds one system's base URL and credentials. In `defs/resources.py` every field is bound to its
environment variable through `EnvVar` (only when that variable is set, so Dagster resolves the value at run
time and the UI shows the variable's name, never its value). A system whose base URL is empty is served by
the embedded simulator, started in this process on an ephemeral loopback port with its own demo
credentials: that is what makes `dagster dev` work with no accounts. Every process (each step, each sensor
tick) starts its own copy; they agree because the simulated world is a function of (seed, time), and what
it must remember (items written back) it keeps in the storage resource's simulator folder.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from unified_assets import settings
from unified_assets.lib.environment import bound_to_set_variables
from unified_assets.lib.storage import PlatformStorage
from unified_assets.settings import SettingError
from unified_assets.sources import coupa, quickbooks, zendesk
from unified_assets.sources.coupa import CoupaClient
from unified_assets.sources.http import HttpPolicy
from unified_assets.sources.pacing import RequestPacer
from unified_assets.sources.paging import ReadAheadClient, SlicedClient, SourceClient
from unified_assets.sources.quickbooks import QuickBooksClient, QuickBooksCredentials
from unified_assets.sources.zendesk import ZendeskClient

if TYPE_CHECKING:
    from saas_simulator import SimulatorServer

INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


def embedded_simulator(storage: PlatformStorage) -> SimulatorServer:
    """The simulator this process serves. Imported here, not at module level: a deployment against the
    real services never pays for it."""
    from unified_assets.embedded_simulator import embedded_server

    return embedded_server(storage.simulator_dir, settings.history_start())


class SourceApi(ConfigurableResource):
    """What every source connection shares: where it is, how patient to be, how big a page is."""

    SYSTEM: ClassVar[str]
    SIMULATOR_SYSTEM: ClassVar[str]
    MAX_PAGE_SIZE: ClassVar[int]
    MAX_WINDOW_SLICES: ClassVar[int] = 8
    ENV_VARS: ClassVar[dict[str, str]]
    SECRET_FIELDS: ClassVar[tuple[str, ...]]

    storage: PlatformStorage = Field(
        description="Where the embedded simulator keeps what it must remember, when it serves this system."
    )
    base_url: str = Field(default="", description="Empty: serve the embedded simulator.")
    page_size: int = Field(
        default=0, description="Records per request; 0 uses the vendor's maximum."
    )
    window_slices: int = Field(
        default=1,
        description=(
            "How many parts of a past window to read at once, each over its own connection (1: one "
            "walk). A window that reaches the present is always read as one."
        ),
    )
    slices_max_requests: int = Field(
        default=0,
        ge=0,
        description=(
            "The vendor's request limit that the slices of one read share, as requests per "
            "slices_per_seconds (0: not paced). Set a little under the vendor's own, which counts "
            "requests as they arrive."
        ),
    )
    slices_per_seconds: float = Field(
        default=1.0, gt=0, description="The window, in seconds, slices_max_requests counts over."
    )
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_retries: int = 8
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter_s: float = 0.5
    retry_after_max_s: int = 120
    response_deadline_s: float = Field(
        default=120.0,
        description=(
            "Seconds a whole response may take, body included (the read timeout bounds each read: "
            "a body trickled a byte at a time never trips it)."
        ),
    )
    max_response_mb: float = Field(
        default=32.0,
        gt=0,
        description=(
            "Largest response read, in MB (10^6 bytes); a larger page is refused before it is parsed. "
            "Lower page_size rather than raise this."
        ),
    )

    @classmethod
    def from_environment(cls, storage: PlatformStorage, **overrides: Any) -> SourceApi:
        """Bind each field whose environment variable is set to that variable through `EnvVar`."""
        bound = bound_to_set_variables(cls.ENV_VARS)
        return cls(storage=storage, **{**bound, **overrides})

    @property
    def uses_simulator(self) -> bool:
        return not self.base_url.strip()

    def now(self) -> datetime:
        """The system's own time, which sensors measure "changed since" windows by: the embedded
        simulator's clock when it serves this system (frozen or accelerated in tests and demos), ours
        otherwise."""
        if self.uses_simulator:
            return embedded_simulator(self.storage).clock.now()
        return datetime.now(UTC)

    def http_policy(self) -> HttpPolicy:
        return HttpPolicy(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            max_retries=self.max_retries,
            backoff_factor_s=self.backoff_factor_s,
            backoff_max_s=self.backoff_max_s,
            backoff_jitter_s=self.backoff_jitter_s,
            retry_after_max_s=self.retry_after_max_s,
            response_deadline_s=self.response_deadline_s,
            max_response_mb=self.max_response_mb,
        )

    def open_client(self, log: logging.Logger, announce: bool = True) -> SourceClient:
        """A client for this system; configuration errors surface here, before any request is sent.
        A sensor, which asks every tick, passes `announce=False` (see `_open`)."""
        return self._open(log, self.http_policy(), page_size=0, announce=announce)

    def open_extractor(self, log: logging.Logger) -> SourceClient:
        """What a raw extract reads a window with: one client reading a page ahead of the caller, or
        `window_slices` of them reading parts of a past window at once, paced together within the
        vendor's request limit."""
        if not 1 <= self.window_slices <= self.MAX_WINDOW_SLICES:
            raise SettingError(
                f"{self.SYSTEM}: window_slices must be 1..{self.MAX_WINDOW_SLICES}, "
                f"got {self.window_slices}"
            )
        policy = self.http_policy()
        if self.window_slices > 1 and self.slices_max_requests:
            pacer = RequestPacer(self.slices_max_requests, self.slices_per_seconds)
            policy = dataclasses.replace(policy, pacer=pacer)
        first = self._open(log, policy, page_size=0)
        if self.window_slices == 1:
            return ReadAheadClient(first)
        return SlicedClient(
            lambda n: first if n == 0 else self._open(log, policy, page_size=0, announce=False),
            self.window_slices,
            self.now,
        )

    def open_probe(self, log: logging.Logger) -> SourceClient:
        """A client for a sensor's quick question ("anything new in this window?"): one record per
        request and little patience, because a sensor tick must end in seconds and the next tick asks
        again. A system that fails this is reported as unreachable rather than waited for."""
        policy = dataclasses.replace(
            self.http_policy(),
            connect_timeout_s=min(self.connect_timeout_s, 5.0),
            read_timeout_s=min(self.read_timeout_s, 10.0),
            max_retries=min(self.max_retries, 1),
            retry_after_max_s=min(self.retry_after_max_s, 5),
            response_deadline_s=min(self.response_deadline_s, 15.0),
        )
        return self._open(log, policy, page_size=1, announce=False)

    def _open(
        self, log: logging.Logger, policy: HttpPolicy, page_size: int, announce: bool = True
    ) -> SourceClient:
        """A client for the configured service or the embedded simulator; `announce` says which in the
        log (runs do; a sensor's probe every minute would only repeat it)."""
        page_size = page_size or self.page_size or self.MAX_PAGE_SIZE
        if self.uses_simulator:
            server = embedded_simulator(self.storage)
            if announce:
                log.info(f"{self.SYSTEM}: no base URL configured; using the embedded simulator")
            credentials = self._simulator_credentials(server)
            base_url = server.base_urls[self.SIMULATOR_SYSTEM]
            return self._client(base_url, credentials, log, policy, page_size)
        base_url = self._checked_base_url()
        missing = [
            self.ENV_VARS[f] for f in self.SECRET_FIELDS if not str(getattr(self, f)).strip()
        ]
        if missing:
            raise SettingError(
                f"{self.SYSTEM}: {', '.join(missing)} must be set when "
                f"{self.ENV_VARS['base_url']} points at a real service"
            )
        return self._client(base_url, self._configured_credentials(), log, policy, page_size)

    def _checked_base_url(self) -> str:
        url = self.base_url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = (
                f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
                if parts.scheme
                else "<hidden>"
            )
            raise SettingError(
                f"{self.SYSTEM}: {self.ENV_VARS['base_url']} is not an http(s) URL with a host "
                f"(got {shown!r}); e.g. https://example.com"
            )
        if parts.username or parts.password:
            raise SettingError(
                f"{self.SYSTEM}: {self.ENV_VARS['base_url']} must not contain credentials; "
                "set them in their own variables"
            )
        return url

    def _client(
        self,
        base_url: str,
        credentials: dict[str, str],
        log: logging.Logger,
        policy: HttpPolicy,
        page_size: int,
    ) -> SourceClient:
        raise NotImplementedError

    def _simulator_credentials(self, server: SimulatorServer) -> dict[str, str]:
        raise NotImplementedError

    def _configured_credentials(self) -> dict[str, str]:
        return {field: str(getattr(self, field)) for field in self.SECRET_FIELDS}


class AccountingApi(SourceApi):
    """QuickBooks Online (invoices): OAuth2 refresh-token flow, query API."""

    SYSTEM: ClassVar[str] = "accounting (QuickBooks Online)"
    SIMULATOR_SYSTEM: ClassVar[str] = "accounting"
    MAX_PAGE_SIZE: ClassVar[int] = quickbooks.MAX_PAGE_SIZE
    ENV_VARS: ClassVar[dict[str, str]] = {
        "base_url": "UNIFIED_ASSETS_ACCOUNTING_BASE_URL",
        "token_url": "UNIFIED_ASSETS_ACCOUNTING_TOKEN_URL",
        "realm_id": "UNIFIED_ASSETS_ACCOUNTING_REALM_ID",
        "client_id": "UNIFIED_ASSETS_ACCOUNTING_CLIENT_ID",
        "client_secret": "UNIFIED_ASSETS_ACCOUNTING_CLIENT_SECRET",
        "refresh_token": "UNIFIED_ASSETS_ACCOUNTING_REFRESH_TOKEN",
    }
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "realm_id",
        "client_id",
        "client_secret",
        "refresh_token",
    )

    slices_max_requests: int = Field(
        default=450,
        ge=0,
        description=(
            "Requests a minute the slices of one read share (QuickBooks allows 500 a minute per "
            "company; 0: not paced)."
        ),
    )
    slices_per_seconds: float = Field(default=60.0, gt=0)
    token_url: str = Field(
        default="", description="Empty: Intuit's token endpoint (or the simulator's)."
    )
    realm_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""

    def _client(
        self,
        base_url: str,
        credentials: dict[str, str],
        log: logging.Logger,
        policy: HttpPolicy,
        page_size: int,
    ) -> SourceClient:
        token_url = credentials.pop("token_url", "") or self.token_url.strip() or INTUIT_TOKEN_URL
        return QuickBooksClient(
            base_url,
            token_url=token_url,
            credentials=QuickBooksCredentials(**credentials),
            policy=policy,
            page_size=page_size,
            log=log,
        )

    def _simulator_credentials(self, server: SimulatorServer) -> dict[str, str]:
        creds = server.credentials
        return {
            "realm_id": creds.realm_id,
            "client_id": creds.qbo_client_id,
            "client_secret": creds.qbo_client_secret,
            "refresh_token": creds.qbo_refresh_token,
            "token_url": server.token_url,
        }


class PurchasingApi(SourceApi):
    """Coupa (purchase orders): API key header, offset pagination."""

    SYSTEM: ClassVar[str] = "purchasing (Coupa)"
    SIMULATOR_SYSTEM: ClassVar[str] = "purchasing"
    MAX_PAGE_SIZE: ClassVar[int] = coupa.MAX_PAGE_SIZE
    ENV_VARS: ClassVar[dict[str, str]] = {
        "base_url": "UNIFIED_ASSETS_PURCHASING_BASE_URL",
        "api_key": "UNIFIED_ASSETS_PURCHASING_API_KEY",
    }
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key",)

    # Coupa pages hold at most 50 purchase orders, so a day's window is many round trips: a past window is
    # read in four slices by default, together within Coupa's 25 requests a second.
    window_slices: int = Field(
        default=4,
        description=(
            "How many parts of a past window to read at once, each over its own connection (1: one "
            "walk). A window that reaches the present is always read as one."
        ),
    )
    slices_max_requests: int = Field(
        default=20,
        ge=0,
        description="Requests a second the slices of one read share (Coupa allows 25; 0: not paced).",
    )
    api_key: str = ""

    def _client(
        self,
        base_url: str,
        credentials: dict[str, str],
        log: logging.Logger,
        policy: HttpPolicy,
        page_size: int,
    ) -> SourceClient:
        return CoupaClient(
            base_url,
            api_key=credentials["api_key"],
            policy=policy,
            page_size=page_size,
        )

    def _simulator_credentials(self, server: SimulatorServer) -> dict[str, str]:
        return {"api_key": server.credentials.coupa_api_key}


class SupportApi(SourceApi):
    """Zendesk (support tickets): API-token basic auth, cursor-based incremental export."""

    SYSTEM: ClassVar[str] = "support (Zendesk)"
    SIMULATOR_SYSTEM: ClassVar[str] = "support"
    MAX_PAGE_SIZE: ClassVar[int] = zendesk.MAX_PAGE_SIZE
    # The incremental export takes a start time only, and allows 10 requests a minute: one walk.
    MAX_WINDOW_SLICES: ClassVar[int] = 1
    ENV_VARS: ClassVar[dict[str, str]] = {
        "base_url": "UNIFIED_ASSETS_SUPPORT_BASE_URL",
        "email": "UNIFIED_ASSETS_SUPPORT_EMAIL",
        "api_token": "UNIFIED_ASSETS_SUPPORT_API_TOKEN",
    }
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("email", "api_token")

    email: str = ""
    api_token: str = ""

    def _client(
        self,
        base_url: str,
        credentials: dict[str, str],
        log: logging.Logger,
        policy: HttpPolicy,
        page_size: int,
    ) -> SourceClient:
        return ZendeskClient(
            base_url,
            email=credentials["email"],
            api_token=credentials["api_token"],
            policy=policy,
            page_size=page_size,
        )

    def _simulator_credentials(self, server: SimulatorServer) -> dict[str, str]:
        creds = server.credentials
        return {"email": creds.zendesk_email, "api_token": creds.zendesk_api_token}


# The slices each source reads a past window in on a usual night; a heavy night's plan reads more.
USUAL_WINDOW_SLICES: dict[str, int] = {
    api.SIMULATOR_SYSTEM: api.model_fields["window_slices"].default
    for api in (AccountingApi, PurchasingApi, SupportApi)
}
