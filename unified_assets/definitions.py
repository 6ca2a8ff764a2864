"""Gathers the platform's assets and resources for Dagster; nothing is defined here."""

from dagster import Definitions

from unified_assets.assets.raw import raw_assets
from unified_assets.resources import AccountingApi, PurchasingApi, SupportApi

defs = Definitions(
    assets=raw_assets,
    resources={
        "accounting_api": AccountingApi.from_environment(),
        "purchasing_api": PurchasingApi.from_environment(),
        "support_api": SupportApi.from_environment(),
    },
)
