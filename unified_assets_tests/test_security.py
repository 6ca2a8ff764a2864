"""What the platform must never do: leak a credential, or let crafted input reach a file or statement.

- Canary credentials, set as a deployment sets them (environment variables read through `EnvVar`), are
  searched for after runs that succeed and runs that fail: in the event log, the run records and their
  configuration, the compute logs, the lake, the warehouse, and the artifacts and logs dbt wrote.
- Crafted partition keys and range tags are refused before any request or file is touched; so is a data
  folder whose path would reach SQL text or a file pattern as code.
- Field names an API sends are data: one crafted as SQL lands in `_raw` like any other field.
- The platform's DuckDB connections reach only the folders they are for, dbt's included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from saas_simulator.credentials import SimCredentials
from saas_simulator.faults import FaultPlan
from unified_assets.confined_duckdb import confined_duckdb
from unified_assets.dbt_confinement import Plugin
from unified_assets.defs.ingestion.assets import RAW_SOURCES, build_raw_asset, raw_assets
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.lake import Lake, RawTable
from unified_assets.lib.dbt_project import DBT_PROJECT_DIR
from unified_assets.lib.source_apis import AccountingApi, PurchasingApi, SupportApi
from unified_assets.lib.storage import DATA_DIR_VAR, PlatformStorage
from unified_assets.settings import SettingError
from unified_assets.sources import quickbooks
from unified_assets_tests.support.resources import FAST_RETRIES, dbt_resources
from unified_assets_tests.support.simulators import frozen_world, serving

RANGE = {
    "dagster/asset_partition_range_start": "2026-03-12",
    "dagster/asset_partition_range_end": "2026-03-14",
}
APIS = {"accounting_api": AccountingApi, "purchasing_api": PurchasingApi, "support_api": SupportApi}


def set_credentials_in_environment(monkeypatch, server, credentials: SimCredentials) -> None:
    """As a deployment does: every connection setting in its environment variable."""
    values = {
        "UNIFIED_ASSETS_ACCOUNTING_BASE_URL": server.base_urls["accounting"],
        "UNIFIED_ASSETS_ACCOUNTING_TOKEN_URL": server.token_url,
        "UNIFIED_ASSETS_ACCOUNTING_REALM_ID": credentials.realm_id,
        "UNIFIED_ASSETS_ACCOUNTING_CLIENT_ID": credentials.qbo_client_id,
        "UNIFIED_ASSETS_ACCOUNTING_CLIENT_SECRET": credentials.qbo_client_secret,
        "UNIFIED_ASSETS_ACCOUNTING_REFRESH_TOKEN": credentials.qbo_refresh_token,
        "UNIFIED_ASSETS_PURCHASING_BASE_URL": server.base_urls["purchasing"],
        "UNIFIED_ASSETS_PURCHASING_API_KEY": credentials.coupa_api_key,
        "UNIFIED_ASSETS_SUPPORT_BASE_URL": server.base_urls["support"],
        "UNIFIED_ASSETS_SUPPORT_EMAIL": credentials.zendesk_email,
        "UNIFIED_ASSETS_SUPPORT_API_TOKEN": credentials.zendesk_api_token,
    }
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)


def resources_from_environment(storage: PlatformStorage, **overrides) -> dict:
    """The source resources as the definitions bind them (`EnvVar`), and the storage they land into."""
    apis = {key: api.from_environment(storage, **overrides) for key, api in APIS.items()}
    return {"storage": storage, **apis}


def texts_under(*folders: Path) -> list[tuple[Path, str]]:
    return [
        (path, path.read_bytes().decode("latin-1"))
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file()
    ]


def test_canary_credentials_appear_nowhere_after_runs_that_succeed_and_fail(
    demo_config, data_dir, storage, tmp_path, monkeypatch
):
    canaries = SimCredentials.generate(seed=7)
    # The purchasing system fails every request: the failure path, with its error messages, runs too.
    plan = FaultPlan.parse("expired_token@accounting=at:2,server_error@purchasing=1.0", seed=3)
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        with serving(frozen_world(demo_config), faults=plan, credentials=canaries) as server:
            set_credentials_in_environment(monkeypatch, server, canaries)
            landed = materialize(
                [build_raw_asset(source, retry_policy=None) for source in RAW_SOURCES],
                resources=resources_from_environment(storage, **FAST_RETRIES, page_size=20),
                instance=instance,
                tags=RANGE,
                raise_on_error=False,
            )
            refreshes = server.stats["accounting"]["token_refreshes"]
        # With no purchase orders landed, dbt fails too: its error path, with the credentials in its
        # environment as a deployment has them.
        built = materialize(
            [dbt_models], resources=dbt_resources(storage), instance=instance, raise_on_error=False
        )
        runs = [landed.run_id, built.run_id]
        stored = [repr(entry) for run_id in runs for entry in instance.all_logs(run_id)]
        stored += [repr(instance.get_run_by_id(run_id)) for run_id in runs]
        stored += [repr(instance.get_run_by_id(run_id).run_config) for run_id in runs]

    failed = {e.step_key for e in landed.all_events if e.is_step_failure}
    assert failed == {"raw__purchase_orders"}, "the purchasing extract fails; the others land"
    assert refreshes >= 2, "the token refresh path ran"
    assert not built.success
    dbt_outputs = [
        path for path in (DBT_PROJECT_DIR / "target").iterdir() if built.run_id[:7] in path.name
    ]
    assert dbt_outputs, "the dbt build's target folder"
    files = texts_under(tmp_path / "dagster_home", data_dir, *dbt_outputs)
    files += texts_under(DBT_PROJECT_DIR / "logs")
    assert any("compute_logs" in str(path) or "storage" in str(path) for path, _ in files)

    for secret in canaries.secret_values():
        assert not any(secret in text for text in stored), "a credential in the event log or runs"
        leaks = [str(path) for path, text in files if secret in text]
        assert leaks == [], f"a credential in {leaks}"


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/partition": "2026-03-01'; drop table staging.stg_accounting__invoices; --"},
        {"dagster/partition": "../../../../etc/passwd"},
        {
            "dagster/asset_partition_range_start": "2026-03-01",
            "dagster/asset_partition_range_end": "2026-03-02/../../../tmp/x",
        },
    ],
    ids=["sql-in-partition", "path-in-partition", "path-in-range"],
)
def test_crafted_partition_keys_are_refused_before_any_request(
    tags, demo_config, data_dir, storage
):
    with serving(frozen_world(demo_config)) as server:
        resources = {
            key: api(
                storage=storage,
                base_url=server.base_urls[key.split("_")[0]],
                **({"token_url": server.token_url} if api is AccountingApi else {}),
            )
            for key, api in APIS.items()
        }
        resources["storage"] = storage
        with pytest.raises(Exception, match=r"does not match format|unconverted data remains"):
            materialize(raw_assets, resources=resources, tags=tags)
        assert all(stats["requests"] == 0 for stats in server.stats.values())
    assert not (data_dir / "lake" / "raw").exists() or not any(
        (data_dir / "lake" / "raw").rglob("*")
    )


def test_a_field_name_crafted_as_sql_is_kept_as_data(data_dir):
    """A vendor's JSON is data: a key written as SQL reaches `_raw` verbatim and executes nothing."""
    crafted = "x'); drop table landed; copy (select 1) to '/tmp/owned.csv'; --"
    record = {
        "Id": "42",
        "MetaData": {"LastUpdatedTime": "2026-03-10T09:00:00Z"},
        "TotalAmt": 10,
        crafted: "value",
    }
    lake = Lake(data_dir / "lake")
    with lake.open_staging("invoices") as staging:
        staging.append([record])
        staging.finish()
        landed = lake.publish_days(
            RawTable("invoices", quickbooks.RAW_COLUMNS),
            staging,
            [date(2026, 3, 10)],
            datetime.now(UTC),
        )
    assert landed.rows_by_day == {date(2026, 3, 10): 1}
    path = lake.partition_file("invoices", date(2026, 3, 10))
    [(raw,)] = duckdb.sql(f"select _raw from read_parquet('{path}')").fetchall()
    assert json.loads(raw)[crafted] == "value"
    assert not Path("/tmp/owned.csv").exists()


@pytest.mark.parametrize(
    "statement",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_csv('{allowed}/../outside/secret.csv')",
        "select * from read_csv('{allowed}-sibling/secret.csv')",
        "attach '{outside}/other.duckdb'",
        "copy (select 1) to '{outside}/written.csv'",
        "install httpfs",
        "set enable_external_access = true",
    ],
)
def test_a_confined_connection_reaches_nothing_outside_its_folders(statement, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    for folder in (allowed, outside, tmp_path / "allowed-sibling"):
        folder.mkdir()
        (folder / "secret.csv").write_text("a\n1\n")
    with confined_duckdb(allowed=[allowed]) as con:
        assert con.execute(f"select a from read_csv('{allowed}/secret.csv')").fetchall() == [(1,)]
        with pytest.raises(duckdb.Error):
            con.execute(statement.format(allowed=allowed, outside=outside))
    assert not (outside / "written.csv").exists() and not (outside / "other.duckdb").exists()


def test_dbts_connection_reaches_nothing_outside_the_lake_ml_files_and_seeds(
    tmp_path, data_dir, storage
):
    """profiles.yml confines dbt's connection (the dbt_confinement plugin): a model, or a macro from a
    package, cannot read a file beside the lake, even in the data folder."""
    (data_dir / "lake").mkdir(parents=True)
    (data_dir / "lake" / "readable.csv").write_text("a\n1\n")
    (data_dir / "secret.csv").write_text("a\n1\n")
    union = (
        f"select a from read_csv('{data_dir}/lake/readable.csv') "
        f"union all select a from read_csv('{data_dir}/secret.csv')"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNIFIED_ASSETS_")}
    env.update(DBT_TARGET_PATH=str(tmp_path / "target"), DBT_LOG_PATH=str(tmp_path / "logs"))
    dbt = Path(sys.executable).with_name("dbt")
    where = ["--vars", json.dumps(storage.dbt_vars())]

    shown = subprocess.run(
        [str(dbt), "show", "--inline", union, "--profiles-dir", ".", *where],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert shown.returncode != 0, shown.stdout + shown.stderr
    assert f'Cannot access file "{data_dir}/secret.csv"' in shown.stdout, shown.stdout
    # DuckDB echoes the query in its error: what matters is that no access error names the lake's file.
    assert f'Cannot access file "{data_dir}/lake/readable.csv"' not in shown.stdout, shown.stdout


@pytest.mark.parametrize("allowed", [None, [], "lake", [""]])
def test_the_dbt_plugin_refuses_a_profile_without_its_folders(allowed):
    with pytest.raises(
        ValueError, match=r"profiles\.yml: the dbt_confinement plugin needs `allowed`"
    ):
        Plugin(
            name="dbt_confinement", plugin_config={} if allowed is None else {"allowed": allowed}
        )


@pytest.mark.parametrize(
    "folder", ["data') union select * from read_csv('/etc/passwd", "/srv/*/data", "/srv/da\nta"]
)
def test_a_data_folder_crafted_as_sql_or_a_pattern_is_refused(folder):
    """The data folder's path reaches SQL text (dbt's sources) and DuckDB's file patterns."""
    with pytest.raises(SettingError, match=f"^{DATA_DIR_VAR}=") as refused:
        _ = PlatformStorage(data_dir=folder).root
    assert "must not contain" in str(refused.value)


def test_a_plain_data_folder_with_spaces_and_accents_is_accepted(tmp_path):
    folder = tmp_path / "données du lac" / "data-2026"
    assert PlatformStorage(data_dir=str(folder)).root == folder.resolve()
