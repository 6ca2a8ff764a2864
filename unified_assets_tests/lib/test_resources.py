"""Bad configuration fails before any request, with a message that names the setting and leaks nothing."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from dagster import EnvVar

from unified_assets import settings
from unified_assets.embedded_simulator import simulated_world
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi
from unified_assets.lib.storage import DATA_DIR_VAR, PlatformStorage
from unified_assets.settings import SettingError

LOG = logging.getLogger("test")
CANARY = "canary-secret-3f9c2"
# Where an embedded simulator would keep its state; these resources fail before starting one.
UNUSED_STORAGE = PlatformStorage(data_dir="/nonexistent/unified-assets-test-data")


@pytest.mark.parametrize(
    ("resource", "variable"),
    [
        (
            AccountingApi(storage=UNUSED_STORAGE, base_url="quickbooks.example.com"),
            "UNIFIED_ASSETS_ACCOUNTING_BASE_URL",
        ),
        (
            PurchasingApi(storage=UNUSED_STORAGE, base_url="htp:/coupa"),
            "UNIFIED_ASSETS_PURCHASING_BASE_URL",
        ),
        (
            SupportApi(storage=UNUSED_STORAGE, base_url="https://"),
            "UNIFIED_ASSETS_SUPPORT_BASE_URL",
        ),
    ],
)
def test_an_unparseable_base_url_names_its_variable(resource, variable):
    with pytest.raises(SettingError, match=f"{variable} is not an http\\(s\\) URL"):
        resource.open_client(LOG)


def test_credentials_inside_a_base_url_are_refused_without_echoing_them():
    resource = SupportApi(
        storage=UNUSED_STORAGE,
        base_url=f"https://agent:{CANARY}@acme.zendesk.example",
        api_token="t",
    )
    with pytest.raises(SettingError) as raised:
        resource.open_client(LOG)
    assert "must not contain credentials" in str(raised.value)
    assert CANARY not in str(raised.value)


@pytest.mark.parametrize(
    ("resource", "missing"),
    [
        (
            AccountingApi(
                storage=UNUSED_STORAGE, base_url="https://quickbooks.example.com", realm_id="1"
            ),
            [
                "UNIFIED_ASSETS_ACCOUNTING_CLIENT_ID",
                "UNIFIED_ASSETS_ACCOUNTING_CLIENT_SECRET",
                "UNIFIED_ASSETS_ACCOUNTING_REFRESH_TOKEN",
            ],
        ),
        (
            PurchasingApi(storage=UNUSED_STORAGE, base_url="https://acme.coupahost.example"),
            ["UNIFIED_ASSETS_PURCHASING_API_KEY"],
        ),
        (
            SupportApi(
                storage=UNUSED_STORAGE,
                base_url="https://acme.zendesk.example",
                email="a@example.com",
            ),
            ["UNIFIED_ASSETS_SUPPORT_API_TOKEN"],
        ),
    ],
)
def test_missing_credentials_for_a_real_endpoint_name_every_missing_variable(resource, missing):
    with pytest.raises(SettingError) as raised:
        resource.open_client(LOG)
    message = str(raised.value)
    for variable in missing:
        assert variable in message
    assert "points at a real service" in message


def test_from_environment_binds_set_variables_through_envvar(monkeypatch):
    monkeypatch.setenv("UNIFIED_ASSETS_PURCHASING_BASE_URL", "https://acme.coupahost.example")
    monkeypatch.setenv("UNIFIED_ASSETS_PURCHASING_API_KEY", CANARY)
    resource = PurchasingApi.from_environment(UNUSED_STORAGE)
    assert resource.api_key == EnvVar("UNIFIED_ASSETS_PURCHASING_API_KEY")
    assert CANARY not in repr(resource)


def test_unset_variables_leave_the_embedded_simulator_in_charge(monkeypatch):
    for variable in AccountingApi.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    assert AccountingApi.from_environment(UNUSED_STORAGE).uses_simulator


def test_history_start_must_be_an_iso_date(monkeypatch):
    monkeypatch.setenv(settings.HISTORY_START_VAR, "01/02/2026")
    with pytest.raises(
        SettingError, match="UNIFIED_ASSETS_HISTORY_START='01/02/2026' is not a date"
    ):
        settings.history_start()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("UNIFIED_ASSETS_SIM_SEED", "seven"), ("UNIFIED_ASSETS_SIM_SCALE", "big")],
)
def test_bad_simulator_settings_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=f"{variable}='{value}' is not valid"):
        simulated_world(date(2026, 1, 1))


def test_data_dir_defaults_to_the_project_and_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_VAR, raising=False)
    assert PlatformStorage.outside_dagster().root == settings.PROJECT_ROOT / "data"
    monkeypatch.setenv(DATA_DIR_VAR, str(tmp_path))
    assert PlatformStorage.outside_dagster().lake_dir == tmp_path / "lake"


def test_with_no_base_url_the_embedded_simulator_starts_and_serves(monkeypatch, storage):
    """What `dagster dev` does with no settings: the simulator comes up in-process on a loopback port."""
    from datetime import UTC, datetime, timedelta

    from unified_assets.lib.source_apis import embedded_simulator
    from unified_assets.sources.paging import Window

    monkeypatch.setenv("UNIFIED_ASSETS_SIM_CLOCK", "frozen:2026-03-15T12:00:00Z")
    monkeypatch.setattr("unified_assets.embedded_simulator._server", None)
    for resource in (
        AccountingApi(storage=storage),
        PurchasingApi(storage=storage),
        SupportApi(storage=storage),
    ):
        client = resource.open_client(LOG)
        start = datetime(2026, 3, 2, tzinfo=UTC)
        pages = list(client.extract(Window(start, start + timedelta(days=1))))
        client.close()
        assert sum(len(page.records) for page in pages) > 0, resource.SYSTEM
        assert resource.now() == datetime(2026, 3, 15, 12, tzinfo=UTC), (
            "the simulated system's time"
        )
    real = AccountingApi(storage=UNUSED_STORAGE, base_url="https://quickbooks.api.intuit.com")
    assert abs((real.now() - datetime.now(UTC)).total_seconds()) < 5
    server = embedded_simulator(storage)
    assert server.url.startswith("http://127.0.0.1:")
    server.stop()


def test_a_run_says_it_uses_the_simulator_and_a_sensor_probe_does_not_repeat_it(
    monkeypatch, caplog, storage
):
    from unified_assets.lib.source_apis import embedded_simulator

    monkeypatch.setattr("unified_assets.embedded_simulator._server", None)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        SupportApi(storage=storage).open_probe(LOG).close()
        assert "embedded simulator" not in caplog.text
        SupportApi(storage=storage).open_client(LOG).close()
        assert (
            "support (Zendesk): no base URL configured; using the embedded simulator" in caplog.text
        )
    server = embedded_simulator(storage)
    assert server.url.startswith("http://127.0.0.1:")
    server.stop()


@pytest.mark.parametrize(
    ("resource", "slices", "allowed"),
    [(SupportApi, 2, "1..1"), (PurchasingApi, 0, "1..8"), (AccountingApi, 9, "1..8")],
)
def test_window_slices_out_of_range_name_the_system_and_the_range(resource, slices, allowed):
    with pytest.raises(SettingError, match=f"window_slices must be {allowed}, got {slices}"):
        resource(storage=UNUSED_STORAGE, window_slices=slices).open_extractor(LOG)


def test_the_dbt_resource_knows_the_version_dbt_reports():
    from dagster_dbt import DbtCliResource

    from unified_assets.lib.dbt_project import dbt_cli_resource

    told = dbt_cli_resource()
    asked = DbtCliResource(project_dir=told.project_dir, dbt_executable=told.dbt_executable)
    assert told._cli_version == asked._cli_version  # the second runs `dbt --version`
