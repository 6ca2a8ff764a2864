"""The Kubernetes deployment's run launcher (deploy/k8s/values.yaml), without a cluster: the instance the
official Dagster Helm chart renders from our values loads with a `K8sRunLauncher` configured from them, and
the Job it would create for a run (captured where the Kubernetes client would send it) runs that run to
success when its container's command is executed in an empty folder with exactly the environment the pod
would get: the ConfigMap (deploy/k8s/configmap.yaml) and Secrets it names, and the variables the Job sets.

What the pod reaches is replaced by the test's services and nothing else: the platform's and Dagster's
Postgres, the bucket, the three source systems (a simulator), the instance ConfigMap's mount point (a folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.tags import DOCKER_IMAGE_TAG, PARTITION_NAME_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from kubernetes.client import ApiClient

from unified_assets.definitions import defs
from unified_assets.lib.dbt_project import dbt_model_key
from unified_assets.lib.k8s_run_launcher import (
    StepSizedK8sRunLauncher,
    largest_resources,
    limits_at_least_requests,
)
from unified_assets.lib.keys import DEMAND_FORECAST_MODEL
from unified_assets.lib.pod_resources import K8S_CONFIG_TAG, PLANNED_MEMORY_TAG
from unified_assets.settings import PROJECT_ROOT
from unified_assets_tests.support.k8s import CONFIG_MAP, DEPLOYMENT, IMAGE, VALUES, pod_environment
from unified_assets_tests.support.simulators import frozen_world, serving

CLUSTER_INSTANCE = PROJECT_ROOT / "deploy" / "cluster" / "dagster.yaml"

# The release of values.yaml's `helm upgrade --install unified-assets ...`, in a namespace of its own, and
# what the chart names after it (`dagster.fullname`: the instance ConfigMap, the service account).
RELEASE, NAMESPACE = "unified-assets", "unified-assets"
CHART_DAGSTER_HOME = "/opt/dagster/dagster_home"  # global.dagsterHome
CHART_FULLNAME = f"{RELEASE}-dagster"

RAW_INVOICES = AssetKey(["raw", "invoices"])
UNIFIED_DEMAND = dbt_model_key("unified_demand")  # a model of the dbt build step
PARTITION = "2026-03-14"  # a whole day before the simulated world's clock (support/simulators.py)
RUN_LIMIT_SECONDS = 300  # a safety net: the command ends when the run does


def chart_run_launcher(values: Mapping[str, Any], kubeconfig_file: Path) -> dict[str, Any]:
    """`run_launcher` as the chart's `dagsterYaml.runLauncher.custom` template renders it from `values`
    (module, class and config as written), except that the launcher reads a kubeconfig (an unreachable
    server) instead of the in-cluster one."""
    launcher = values["runLauncher"]
    assert launcher["type"] == "CustomRunLauncher"
    custom = launcher["config"]["customRunLauncher"]
    config = {
        **custom["config"],
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig_file),
    }
    return {"module": custom["module"], "class": custom["class"], "config": config}


def fake_kubeconfig(path: Path) -> Path:
    """A kubeconfig the launcher loads, for a server nobody listens on: nothing reaches a cluster."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    return path


def with_env_resolved(settings: Any, literal: Mapping[str, str]) -> Any:
    """`settings` with each `{env: NAME}` whose NAME is in `literal` replaced by its value."""
    if isinstance(settings, dict):
        if set(settings) == {"env"} and settings["env"] in literal:
            return literal[settings["env"]]
        return {key: with_env_resolved(value, literal) for key, value in settings.items()}
    if isinstance(settings, list):
        return [with_env_resolved(item, literal) for item in settings]
    return settings


def write_chart_instance(
    dagster_home: Path, postgres_database, logs_bucket: str, kubeconfig_file: Path
) -> None:
    """The instance's dagster.yaml as the chart's instance ConfigMap holds it: deploy/cluster/dagster.yaml's
    sections with what the chart writes literally (Postgres's address and user, the step logs' bucket)
    written in, pointing at the test's services; the password stays `DAGSTER_PG_PASSWORD`, which the chart
    gives every pod from `global.postgresqlSecretName`; and the run launcher from values.yaml."""
    instance = yaml.safe_load(CLUSTER_INSTANCE.read_text())
    postgres_db = instance["storage"]["postgres"]["postgres_db"]
    assert postgres_db["scheme"] == VALUES["postgresql"]["postgresqlScheme"]
    instance = with_env_resolved(
        instance,
        {
            "DAGSTER_PG_HOST": postgres_database.host,
            "DAGSTER_PG_PORT": postgres_database.port,
            "DAGSTER_PG_DB": postgres_database.dbname,
            "DAGSTER_PG_USER": postgres_database.user,
            "DAGSTER_COMPUTE_LOGS_BUCKET": logs_bucket,
        },
    )
    instance["run_launcher"] = chart_run_launcher(VALUES, kubeconfig_file)
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance, sort_keys=False))


def chart_instance(tmp_path, monkeypatch, postgres_database, s3_server) -> Path:
    """DAGSTER_HOME with the chart's instance, and the environment the webserver's and the daemon's pods
    have (the Postgres password, the bucket's endpoint and credentials); returns DAGSTER_HOME."""
    dagster_home = tmp_path / "dagster_home"
    write_chart_instance(
        dagster_home,
        postgres_database,
        s3_server.create_bucket(),
        fake_kubeconfig(tmp_path / "kubeconfig"),
    )
    for variable, value in {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": NAMESPACE,  # the chart's `dagster.shared_env`
        "DAGSTER_PG_PASSWORD": postgres_database.password,
        "UNIFIED_ASSETS_S3_ENDPOINT": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
    }.items():
        monkeypatch.setenv(variable, value)
    return dagster_home


@contextmanager
def code_location(instance: DagsterInstance) -> Iterator[WorkspaceRequestContext]:
    """The code location as the chart's user deployment serves it: `unified_assets.definitions`, named
    after the deployment, reporting the deployment's image (what `dagster api grpc` reads from
    DAGSTER_CURRENT_IMAGE in the pod). Loaded in this process: only its answers matter here."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable, module_name="unified_assets.definitions"
        ),
        container_image=IMAGE,
        location_name=DEPLOYMENT["name"],
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process:
        yield process.create_request_context()


def create_asset_run(
    instance: DagsterInstance,
    workspace: WorkspaceRequestContext,
    asset_key: AssetKey,
    tags: Mapping[str, str],
    checks: frozenset[AssetCheckKey] = frozenset(),
):
    """A run materializing `asset_key` (and `checks`, which an asset that cannot be subset needs),
    created as the daemon creates a sensor's or a schedule's run: from the code location's job snapshot
    and execution plan, with its remote origin."""
    location = workspace.get_code_location(DEPLOYMENT["name"])
    [repository_name] = location.get_repository_names()
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=location.name,
            repository_name=repository_name,
            job_name="__ASSET_JOB",
            op_selection=None,
            asset_selection={asset_key},
            asset_check_selection=set(checks),
        )
    )
    plan = location.get_execution_plan(
        remote_job, {}, step_keys_to_execute=None, known_state=None, instance=instance
    )
    return instance.create_run(
        job_name=remote_job.name,
        run_id=None,
        run_config={},
        resolved_op_selection=remote_job.resolved_op_selection,
        step_keys_to_execute=None,
        status=DagsterRunStatus.NOT_STARTED,
        op_selection=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.run_tags, **tags},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset({asset_key}),
        asset_check_selection=checks,
        asset_graph=location.get_repository(repository_name).asset_graph,
    )


def launch_capturing_the_job(
    instance: DagsterInstance, run_id: str, workspace: WorkspaceRequestContext
) -> dict[str, Any]:
    """Launch the run as the queue's daemon does; the Kubernetes Job the launcher creates is kept, not sent.
    Returned as the API would receive it (camelCase)."""
    created = []

    def create_namespaced_job(body, namespace, **_options):
        created.append((namespace, body))
        return body

    instance.run_launcher._api_client.batch_api.create_namespaced_job = create_namespaced_job
    instance.launch_run(run_id, workspace)
    [(namespace, body)] = created
    assert namespace == NAMESPACE
    return ApiClient().sanitize_for_serialization(body)


def cluster_objects(
    server, postgres_database, s3_server, bucket_url: str, scratch: Path
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The ConfigMaps and Secrets of the namespace (deploy/k8s/values.yaml's header): our ConfigMap with
    each setting that names a real service pointed at the test's, the Postgres password Secret, and
    `unified-assets-secrets` holding the passwords and the vendors' credentials the simulator accepts."""
    settings = dict(CONFIG_MAP["data"])
    simulator = dict(line.split("=", 1) for line in server.credentials.env_lines(server.base_urls))
    repointed = {
        "UNIFIED_ASSETS_DATA_DIR": str(scratch),
        "UNIFIED_ASSETS_BUCKET_URL": bucket_url,
        "UNIFIED_ASSETS_S3_ENDPOINT": s3_server.endpoint_url,
        "AWS_REGION": s3_server.region,
        "PGHOST": postgres_database.host,
        "PGPORT": str(postgres_database.port),
        "PGDATABASE": postgres_database.dbname,
        "PGUSER": postgres_database.user,
        **{name: url for name, url in simulator.items() if name.endswith("_BASE_URL")},
    }
    assert set(repointed) <= set(settings), sorted(set(repointed) - set(settings))
    # Production uses Intuit's token endpoint, the setting's default; the simulator serves its own.
    token_url = {
        name: url for name, url in simulator.items() if name.endswith("ACCOUNTING_TOKEN_URL")
    }
    credentials = {
        name: value
        for name, value in simulator.items()
        if name not in repointed and name not in token_url
    }
    config_maps = {CONFIG_MAP["metadata"]["name"]: {**settings, **repointed, **token_url}}
    secrets = {
        VALUES["global"]["postgresqlSecretName"]: {
            "postgresql-password": postgres_database.password
        },
        "unified-assets-secrets": {
            "PGPASSWORD": postgres_database.password,
            "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
            **credentials,
        },
    }
    return config_maps, secrets


def run_the_pod(job: Mapping[str, Any], environment: Mapping[str, str], tmp_path: Path):
    """The Job's one container's command, in an empty working folder (the image's is not this checkout)
    with an empty home, and the image's programs (this virtualenv's) first on the PATH."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = [*container.get("command", []), *container["args"]]
    workdir, home = tmp_path / "pod-workdir", tmp_path / "pod-home"
    workdir.mkdir()
    home.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        command,
        cwd=workdir,
        env={**environment, "PATH": path, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_SECONDS,
    )


def test_the_chart_instance_loads_a_k8s_run_launcher_configured_from_values_yaml(
    tmp_path, monkeypatch, postgres_database, s3_server
):
    chart_instance(tmp_path, monkeypatch, postgres_database, s3_server)
    with DagsterInstance.get() as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, StepSizedK8sRunLauncher)
        assert launcher.service_account_name == CHART_FULLNAME
        assert launcher.instance_config_map == f"{CHART_FULLNAME}-instance"
        assert launcher.dagster_home == CHART_DAGSTER_HOME
        assert launcher.env_config_maps == ["unified-assets-config"]
        assert launcher.env_secrets == ["unified-assets-secrets"]
        assert launcher.job_namespace == NAMESPACE
        assert launcher.run_k8s_config["container_config"]["resources"]["requests"] == {
            "cpu": "500m",
            "memory": "1Gi",
        }
        assert launcher.run_k8s_config["job_spec_config"] == {"ttlSecondsAfterFinished": 86400}
    # The daemon and the webserver load that launcher's class: they run the code location's image.
    for service in ("dagsterDaemon", "dagsterWebserver"):
        image = VALUES[service]["image"]
        assert f"{image['repository']}:{image['tag']}" == IMAGE, service


def step_resources(asset_key: AssetKey) -> dict[str, Any]:
    """What the step materializing `asset_key` asks for in its `dagster-k8s/config` op tag."""
    tags = defs.resolve_assets_def(asset_key).op.tags
    return json.loads(tags[K8S_CONFIG_TAG])["container_config"]["resources"]


def launched_resources(instance, workspace, asset_key: AssetKey, tags=None) -> dict[str, Any]:
    """The resources of the run pod the launcher creates for a run of `asset_key` with `tags`."""
    assets_def = defs.resolve_assets_def(asset_key)
    checks = frozenset() if assets_def.can_subset else frozenset(assets_def.check_keys)
    run = create_asset_run(instance, workspace, asset_key, tags or {}, checks)
    job = launch_capturing_the_job(instance, run.run_id, workspace)
    [container] = job["spec"]["template"]["spec"]["containers"]
    return container["resources"]


def test_a_runs_pod_requests_what_its_heaviest_step_asks_for(
    tmp_path, monkeypatch, postgres_database, s3_server
):
    chart_instance(tmp_path, monkeypatch, postgres_database, s3_server)
    defaults = VALUES["runLauncher"]["config"]["customRunLauncher"]["config"]["run_k8s_config"]
    default_resources = defaults["container_config"]["resources"]
    with DagsterInstance.get() as instance, code_location(instance) as workspace:
        for heavy in (DEMAND_FORECAST_MODEL, UNIFIED_DEMAND):
            asked = step_resources(heavy)
            assert largest_resources([asked, default_resources]) == asked, (
                f"{heavy.to_user_string()} asks for less than a run gets anyway"
            )
            assert launched_resources(instance, workspace, heavy) == asked, heavy

        # A run's own tag still decides what it names; the step's figures fill in the rest.
        more_memory = {"container_config": {"resources": {"requests": {"memory": "12Gi"}}}}
        resources = launched_resources(
            instance, workspace, DEMAND_FORECAST_MODEL, {K8S_CONFIG_TAG: json.dumps(more_memory)}
        )
        asked = step_resources(DEMAND_FORECAST_MODEL)
        assert resources["requests"] == {**asked["requests"], "memory": "12Gi"}
        assert resources["limits"] == asked["limits"]

        # A step that asks for nothing runs with the launcher's defaults.
        assert launched_resources(instance, workspace, RAW_INVOICES) == default_resources

        # The memory the capacity plan forecasts for a heavy day raises the pod, and never lowers it.
        heavy_day = launched_resources(
            instance, workspace, RAW_INVOICES, {PLANNED_MEMORY_TAG: "6Gi"}
        )
        assert heavy_day["requests"] == {**default_resources["requests"], "memory": "6Gi"}
        assert heavy_day["limits"] == {**default_resources["limits"], "memory": "6Gi"}, (
            "the deployment's limit raised to the planned request"
        )
        small = {PLANNED_MEMORY_TAG: "256Mi"}
        assert launched_resources(instance, workspace, RAW_INVOICES, small) == default_resources


def test_a_limit_below_a_larger_request_from_elsewhere_is_raised_to_it():
    assert limits_at_least_requests(
        {"requests": {"memory": "6Gi", "cpu": "1"}, "limits": {"memory": "3Gi"}}
    ) == {"requests": {"memory": "6Gi", "cpu": "1"}, "limits": {"memory": "6Gi"}}
    unlimited = {"requests": {"memory": "1Gi"}}
    assert limits_at_least_requests(unlimited) == unlimited, "no limit is added where none was set"


def test_the_largest_of_each_resource_is_taken_as_kubernetes_compares_quantities():
    assert largest_resources(
        [
            {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}},
            {"requests": {"cpu": "2", "memory": "1536Mi"}},
            {"requests": {"cpu": "1500m", "memory": "1000Mi"}, "limits": {"memory": "2Gi"}},
        ]
    ) == {"requests": {"cpu": "2", "memory": "1536Mi"}, "limits": {"memory": "3Gi"}}
    assert largest_resources([]) == {}


def test_the_job_the_launcher_creates_runs_a_days_extract_to_success_from_an_empty_folder(
    demo_config, tmp_path, monkeypatch, postgres_database, s3_server
):
    dagster_home = chart_instance(tmp_path, monkeypatch, postgres_database, s3_server)
    bucket = s3_server.create_bucket()
    scratch = tmp_path / "pod-scratch"  # the pod's emptyDir
    scratch.mkdir()
    with DagsterInstance.get() as instance:
        with code_location(instance) as workspace:
            run = create_asset_run(
                instance, workspace, RAW_INVOICES, {PARTITION_NAME_TAG: PARTITION}
            )
            job = launch_capturing_the_job(instance, run.run_id, workspace)

        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == IMAGE
        assert instance.get_run_by_id(run.run_id).tags[DOCKER_IMAGE_TAG] == IMAGE
        assert container["envFrom"] == [
            {"configMapRef": {"name": "unified-assets-config"}},
            {"secretRef": {"name": "unified-assets-secrets"}},
        ]
        assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
        assert container["resources"]["limits"] == {"memory": "3Gi"}
        assert job["spec"]["ttlSecondsAfterFinished"] == 86400
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == CHART_FULLNAME
        assert container["args"][:3] == ["dagster", "api", "execute_run"]

        with serving(frozen_world(demo_config)) as server:
            config_maps, secrets = cluster_objects(
                server, postgres_database, s3_server, f"s3://{bucket}/unified_assets", scratch
            )
            environment = pod_environment(container, config_maps, secrets)
            assert environment["DAGSTER_HOME"] == CHART_DAGSTER_HOME
            # The instance ConfigMap is mounted there in the pod; here it is the folder written above.
            environment["DAGSTER_HOME"] = str(dagster_home)
            finished = run_the_pod(job, environment, tmp_path)

        outcome = instance.get_run_by_id(run.run_id)
        assert outcome.status == DagsterRunStatus.SUCCESS, finished.stdout + finished.stderr
        assert finished.returncode == 0, finished.stderr
    landed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="unified_assets/")
    keys = [item["Key"] for item in landed.get("Contents", [])]
    assert any(f"raw/invoices/updated_date={PARTITION}/" in key for key in keys), keys
