"""Resources pointed at a simulator as if it were the real services, so tests exercise exactly the path
production takes (base URL, credentials, retries), with a data folder of the test's own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dagster import ConfigurableResource

from saas_simulator.credentials import SimCredentials
from unified_assets.lib.dbt_project import dbt_cli_resource
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SourceApi, SupportApi
from unified_assets.lib.storage import PlatformStorage

# Quick retries for a test suite. The read timeout is generous: a page answered late by a busy machine is
# not a fault. Tests that inject the simulator's read timeouts (an answer held back 1-2 s) shorten it with
# SHORT_READ_TIMEOUT.
FAST_RETRIES = {
    "connect_timeout_s": 2.0,
    "read_timeout_s": 10.0,
    "max_retries": 8,
    "backoff_factor_s": 0.01,
    "backoff_max_s": 0.05,
    "backoff_jitter_s": 0.01,
    "retry_after_max_s": 1,
}


class ServedApis(Protocol):
    """A simulator serving the three systems, in this process or another (tests, benchmarks)."""

    @property
    def base_urls(self) -> Mapping[str, str]: ...

    @property
    def token_url(self) -> str: ...

    @property
    def credentials(self) -> SimCredentials: ...


def resources_pointed_at(
    served: ServedApis,
    storage: PlatformStorage,
    credentials: SimCredentials | None = None,
    per_resource: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> dict[str, SourceApi]:
    """The three source resources configured as for the real services, with `served`'s URLs and
    `credentials` (default: the ones it accepts). `options` set the remaining fields (retries, page size)
    of all three; `per_resource` those of one (by resource key)."""
    creds = credentials or served.credentials
    resources: dict[str, SourceApi] = {
        "accounting_api": AccountingApi(
            storage=storage,
            base_url=served.base_urls["accounting"],
            token_url=served.token_url,
            realm_id=creds.realm_id,
            client_id=creds.qbo_client_id,
            client_secret=creds.qbo_client_secret,
            refresh_token=creds.qbo_refresh_token,
            **options,
        ),
        "purchasing_api": PurchasingApi(
            storage=storage,
            base_url=served.base_urls["purchasing"],
            api_key=creds.coupa_api_key,
            **options,
        ),
        "support_api": SupportApi(
            storage=storage,
            base_url=served.base_urls["support"],
            email=creds.zendesk_email,
            api_token=creds.zendesk_api_token,
            **options,
        ),
    }
    for key, fields in (per_resource or {}).items():
        resources[key] = with_fields(resources[key], **fields)
    return resources


SHORT_READ_TIMEOUT = {"read_timeout_s": 0.5}


def source_resources(
    server: ServedApis,
    storage: PlatformStorage,
    credentials: SimCredentials | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """`storage` and the source resources pointed at `server`, with fast retries: what a raw extract or
    a sensor needs."""
    return {
        "storage": storage,
        **resources_pointed_at(server, storage, credentials, **{**FAST_RETRIES, **overrides}),
    }


def dbt_resources(storage: PlatformStorage) -> dict[str, Any]:
    """What the dbt assets need: the dbt CLI and where the lake and the warehouse are."""
    return {"dbt": dbt_cli_resource(), "storage": storage}


def with_fields(resource: ConfigurableResource, **changes: Any) -> ConfigurableResource:
    """A copy of a resource with some fields changed (pydantic's model_copy bypasses Dagster's config)."""
    fields = {name: getattr(resource, name) for name in type(resource).model_fields}
    return type(resource)(**{**fields, **changes})
