"""The cluster profile's Kubernetes run launcher: each run's pod requests what its heaviest step asks for.

Dagster's `K8sRunLauncher` gives every run pod the same resources (the launcher's `run_k8s_config`) unless
the run itself carries a `dagster-k8s/config` tag; the per-step tag (`lib/pod_resources.py`) is honoured
only by the `k8s_job_executor`, which starts a pod per step. The platform executes a run's steps in the
run's own pod (`lib/executor.py`), so this launcher reads the run's execution plan, takes for each resource
the largest request and limit among the steps the run executes, the launcher's own defaults and the memory
the capacity plan forecasts for the run (`PLANNED_MEMORY_TAG`, on a heavy day), and gives the pod those. A
`dagster-k8s/config` tag on the run is applied over them, as Dagster does.

The Helm values name it as a custom run launcher (deploy/k8s/values.yaml), so the daemon and the webserver
run the platform's image, where this module is installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import DagsterRun
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import get_user_defined_k8s_config
from kubernetes.utils import parse_quantity

from unified_assets.lib.pod_resources import K8S_CONFIG_TAG, planned_resources

Resources = dict[str, dict[str, str]]  # {"requests": {"cpu": "500m", ...}, "limits": {...}}


class StepSizedK8sRunLauncher(K8sRunLauncher):
    """`K8sRunLauncher` whose run pods are sized for the largest step of each run."""

    def get_container_context_for_run(self, dagster_run: DagsterRun) -> K8sContainerContext:
        defaults = self._default_resources()
        planned = planned_resources(dagster_run.tags)
        sized = limits_at_least_requests(
            largest_resources([defaults, planned, *self._step_resources(dagster_run)])
        )
        if sized != defaults:
            dagster_run = dagster_run.with_tags(
                {**dagster_run.tags, K8S_CONFIG_TAG: beneath_run_tag(sized, dagster_run.tags)}
            )
        return super().get_container_context_for_run(dagster_run)

    def _default_resources(self) -> Resources:
        container_config = (self.run_k8s_config or {}).get("container_config") or {}
        return {**(self.resources or {}), **(container_config.get("resources") or {})}

    def _step_resources(self, dagster_run: DagsterRun) -> list[Resources]:
        if dagster_run.execution_plan_snapshot_id is None:
            return []
        plan = self._instance.get_execution_plan_snapshot(dagster_run.execution_plan_snapshot_id)
        executed = set(plan.step_keys_to_execute)
        return [
            dict(get_user_defined_k8s_config(step.tags).container_config.get("resources") or {})
            for step in plan.steps
            if step.key in executed and step.tags and K8S_CONFIG_TAG in step.tags
        ]


def largest_resources(candidates: Iterable[Resources]) -> Resources:
    """For each of `requests` and `limits`, each resource at the largest quantity any candidate names
    (quantities compared as Kubernetes reads them: "1536Mi" > "1Gi", "2" > "500m")."""
    largest: Resources = {}
    for resources in candidates:
        for section in ("requests", "limits"):
            for name, quantity in (resources.get(section) or {}).items():
                held = largest.setdefault(section, {})
                if name not in held or parse_quantity(quantity) > parse_quantity(held[name]):
                    held[name] = str(quantity)
    return largest


def limits_at_least_requests(resources: Resources) -> Resources:
    """Each limit raised to its request where a larger request came from another candidate (Kubernetes
    refuses a pod whose request exceeds its limit)."""
    requests, limits = resources.get("requests", {}), dict(resources.get("limits", {}))
    for name, quantity in requests.items():
        if name in limits and parse_quantity(limits[name]) < parse_quantity(quantity):
            limits[name] = quantity
    return {**resources, "limits": limits} if limits else resources


def beneath_run_tag(resources: Resources, run_tags: Mapping[str, str]) -> str:
    """The run's `dagster-k8s/config` tag (JSON) with `resources` wherever the tag names none itself."""
    config: dict[str, Any] = json.loads(run_tags.get(K8S_CONFIG_TAG, "{}"))
    container_config = config.setdefault("container_config", {})
    own = container_config.get("resources") or {}
    container_config["resources"] = {
        section: {**resources.get(section, {}), **own.get(section, {})}
        for section in {*resources, *own}
    }
    return json.dumps(config)
