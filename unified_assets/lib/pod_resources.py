"""What a step asks of the machine it runs on, in the form Dagster's Kubernetes integration reads: the
`dagster-k8s/config` op tag.

Outside Kubernetes the tag is inert. On Kubernetes the platform's run launcher
(`unified_assets.lib.k8s_run_launcher`) sizes each run's pod for the heaviest step the run executes, and
Dagster's `k8s_job_executor`, where a deployment chooses it, gives the step a pod of exactly this size.
The figures next to each use say where they come from (docs/scale-out.md, *Kubernetes*).
"""

from __future__ import annotations

from typing import Any

K8S_CONFIG_TAG = "dagster-k8s/config"
# The memory a run's pod should have at least, as a Kubernetes quantity: set by the daily schedule on a day
# the capacity plan forecasts to be heavy. Unlike a run's own `dagster-k8s/config`, it only ever raises
# what the launcher would give (a forecast must not shrink a pod below the deployment's defaults).
PLANNED_MEMORY_TAG = "unified_assets/planned_memory"


def pod_resources(*, cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    """Op tags requesting `cpu` and `memory` (Kubernetes quantities: "2", "500m", "1536Mi") for the step's
    container, and capping its memory at `memory_limit`. No CPU limit: a throttled step only runs slower,
    a step over its memory is killed, so only memory gets a ceiling."""
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}


def planned_resources(run_tags: dict[str, str]) -> dict[str, dict[str, str]]:
    """The run's planned memory as a request, or nothing when the run has no plan. No limit: where the
    deployment sets none, a plan must not add one (the launcher raises a limit below a request)."""
    memory = run_tags.get(PLANNED_MEMORY_TAG)
    return {"requests": {"memory": memory}} if memory else {}
