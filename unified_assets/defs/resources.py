"""The resources every domain receives, bound to the environment: where the platform keeps its data, the
three source systems, dbt, and where alerts go. Each field whose variable is set is bound through `EnvVar`,
so Dagster resolves it when a run starts and the UI shows the variable's name, never a secret."""

from dagster import Definitions, definitions

from unified_assets.defs.alerts.sink import AlertSink
from unified_assets.lib.dbt_project import dbt_cli_resource
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi
from unified_assets.lib.storage import PlatformStorage


@definitions
def resources() -> Definitions:
    storage = PlatformStorage.from_environment()
    return Definitions(
        resources={
            "storage": storage,
            "accounting_api": AccountingApi.from_environment(storage),
            "purchasing_api": PurchasingApi.from_environment(storage),
            "support_api": SupportApi.from_environment(storage),
            "dbt": dbt_cli_resource(),
            "alert_sink": AlertSink.from_environment(storage),
        }
    )
