"""The Kubernetes deployment's files (deploy/k8s/) as the tests read them, and a pod's environment as the
kubelet would set it from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from unified_assets.settings import PROJECT_ROOT

K8S = PROJECT_ROOT / "deploy" / "k8s"
VALUES = yaml.safe_load((K8S / "values.yaml").read_text())
CONFIG_MAP = yaml.safe_load((K8S / "configmap.yaml").read_text())
[DEPLOYMENT] = VALUES["dagster-user-deployments"]["deployments"]
IMAGE = f"{DEPLOYMENT['image']['repository']}:{DEPLOYMENT['image']['tag']}"


def pod_environment(
    container: Mapping[str, Any],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's variables as the kubelet sets them: each `envFrom` source in order, then `env`
    (literal values and references to a Secret's key). A name the cluster lacks fails the test, as it
    would keep the pod from starting."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config_maps[source["configMapRef"]["name"]])
        else:
            environment.update(secrets[source["secretRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = secrets[reference["name"]][reference["key"]]
    return environment
