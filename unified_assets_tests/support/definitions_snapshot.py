"""The code location as reviewable text: every asset, check, job, sensor, schedule and resource a user sees,
one fact per line, sorted, so any change to the graph shows up as one diff of
`unified_assets_tests/snapshots/definitions.txt`."""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, Definitions
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph


def _keys(keys: Iterable[AssetKey]) -> str:
    return ", ".join(sorted(key.to_user_string() for key in keys)) or "-"


def _label(condition) -> str:
    return (condition.get_label() or type(condition).__name__) if condition else "-"


def _freshness(policy) -> str:
    if policy is None:
        return "-"
    windows = {"warn": getattr(policy, "warn_window", None), "fail": policy.fail_window}
    return ", ".join(
        f"{name} after {window.to_timedelta()}" for name, window in windows.items() if window
    )


def _targets(graph: AssetGraph, targets, selection=None) -> str:
    if not targets and selection is not None:
        return _keys(selection.resolve(graph))
    if not targets:
        return "-"
    selected = set()
    for target in targets:
        job = target.resolvable_to_job
        selection = getattr(job, "selection", None)
        if selection is None:
            return f"job {job.name}"
        selected |= set(selection.resolve(graph))
    return _keys(selected)


def asset_lines(graph: AssetGraph) -> list[str]:
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=AssetKey.to_user_string):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        lines += [
            f"asset {key.to_user_string()}",
            f"  group: {node.group_name}",
            f"  owners: {', '.join(node.owners) or '-'}",
            f"  kinds: {', '.join(sorted(node.kinds)) or '-'}",
            f"  deps: {_keys(node.parent_keys)}",
            f"  partitions: {node.partitions_def or '-'}",
            f"  automation: {_label(node.automation_condition)}",
            f"  freshness: {_freshness(node.freshness_policy)}",
            f"  pools: {', '.join(sorted(node.pools or ())) or '-'}",
            f"  described: {'yes' if node.description else 'NO'}",
        ]
        for check_key in sorted(node.check_keys, key=lambda k: k.name):
            spec = graph.get_check_spec(check_key)
            blocking = " (blocking)" if spec.blocking else ""
            lines.append(f"  check {check_key.name}{blocking}")
    return lines


def snapshot(defs: Definitions) -> str:
    """The text of the snapshot file for `defs`."""
    graph = defs.resolve_asset_graph()
    lines = asset_lines(graph)
    for job in sorted(defs.jobs or (), key=lambda job: job.name):
        selection = getattr(job, "selection", None)
        if selection is None:  # an op job: its ops, not assets
            ops = sorted(node.name for node in job.all_node_defs)
            lines.append(f"job {job.name}: ops {', '.join(ops)}")
        else:
            lines.append(f"job {job.name}: {_keys(selection.resolve(graph))}")
    for sensor in sorted(defs.sensors or (), key=lambda sensor: sensor.name):
        lines += [
            f"sensor {sensor.name} ({type(sensor).__name__})",
            f"  default: {sensor.default_status.value}, every {sensor.minimum_interval_seconds} s",
            f"  targets: {_targets(graph, sensor.targets, sensor.asset_selection)}",
            f"  resources: {', '.join(sorted(sensor.required_resource_keys)) or '-'}",
        ]
    for schedule in sorted(defs.schedules or (), key=lambda schedule: schedule.name):
        lines += [
            f"schedule {schedule.name}: {schedule.cron_schedule} {schedule.execution_timezone}",
            f"  default: {schedule.default_status.value}",
            f"  targets: {_targets(graph, [schedule.target])}",
        ]
    for name, resource in sorted((defs.resources or {}).items()):
        lines.append(f"resource {name}: {type(resource).__name__}")
    return "\n".join(lines) + "\n"
