"""How a run executes its steps: in the run's own process, unless two of them can run at the same time;
then in processes forked from a server that has already imported the definitions.

Dagster's default multiprocess executor spawns a fresh Python per step, and every one of them imports the
code location again (dagster, dagster-dbt, pandas: about 5 s on two cores, more under load) before its
first line of work. Two of Dagster's own options remove most of that (docs/benchmarks.md, *Per-step
overhead*, has the figures):
- a run whose steps can only run one after another executes them in the run worker, which has imported
  the definitions already: a seed, an event sensor's run, and the automation's rebuilds (the dbt models,
  then sentiment and the training set, which share the `warehouse` pool, then the mart that reads them);
- a run where two steps could overlap (neither waits on the other, and they do not queue for the same
  pool: the three sources' extractions and their checks) forks them from a `forkserver` that imports,
  once per run, the definitions, the modules
  the steps import lazily, and the instance's own storage classes (which every step process loads to write
  its events: sqlalchemy and Dagster's SQL storage, about 2 s otherwise). The three sources still extract
  concurrently, each in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from itertools import combinations
from typing import Any

from dagster import (
    DagsterInstance,
    Executor,
    InitExecutorContext,
    executor,
    in_process_executor,
    multiprocess_executor,
)
from dagster._serdes.config_class import ConfigurableClassData

from unified_assets.lib.run_workers import free_dead_runs_before_a_run


def steps_can_overlap(step_deps: Mapping[str, set[str]], pools: Mapping[str, str | None]) -> bool:
    """Whether two steps could run at the same time: neither is upstream of the other and they do not
    wait for the same pool. Every pool admits one step at a time (deploy/dagster.yaml); were a pool to
    admit more, steps that share it would still be run one after another here: slower, never wrong."""

    @cache
    def upstream(key: str) -> frozenset[str]:
        direct = step_deps.get(key, set())
        return frozenset(direct).union(*(upstream(parent) for parent in direct))

    for a, b in combinations(sorted(step_deps), 2):
        if a in upstream(b) or b in upstream(a):
            continue
        if pools.get(a) is not None and pools.get(a) == pools.get(b):
            continue
        return True
    return False


class ForkOnlyWhereStepsOverlap(Executor):
    """Delegates a run to the multiprocess executor when two of its steps can overlap, else to the
    in-process executor: forking costs the forkserver's import of the code location (seconds), worth it
    only when steps then run side by side."""

    def __init__(self, multiprocess: Executor, in_process: Executor):
        self._multiprocess = multiprocess
        self._in_process = in_process

    @property
    def retries(self) -> Any:
        return self._multiprocess.retries

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        # A run killed outright still holds its pool slots: freed first, or this run would wait forever.
        free_dead_runs_before_a_run(plan_context.instance, plan_context.log)
        pools = {
            step.key: step.pool for step in execution_plan.get_steps_to_execute_in_topo_order()
        }
        overlap = steps_can_overlap(execution_plan.get_executable_step_deps(), pools)
        chosen = self._multiprocess if overlap else self._in_process
        yield from chosen.execute(plan_context, execution_plan)


def forked_steps_config(preload_modules: list[str], max_concurrent: int) -> dict[str, Any]:
    """The multiprocess executor's config for steps forked from a server that preloads
    `preload_modules` (the definitions module named explicitly: Dagster's default preloads only `dagster`
    when a run is launched from a code server rather than a module)."""
    return {
        "max_concurrent": max_concurrent,
        "start_method": {"forkserver": {"preload_modules": preload_modules}},
    }


def instance_modules(instance: DagsterInstance) -> list[str]:
    """The modules of the classes a step process rebuilds the instance from (its storages, compute log
    manager, run launcher...), read from the instance's own reference, so a Postgres instance preloads
    its own storage as SQLite preloads SQLite's."""

    def modules(value: object) -> Iterator[str]:
        if isinstance(value, ConfigurableClassData):
            yield value.module_name
        elif isinstance(value, tuple) and hasattr(value, "_asdict"):
            for field in value._asdict().values():
                yield from modules(field)

    return sorted(set(modules(instance.get_ref())))


@executor(
    name="in_process_unless_steps_overlap",
    config_schema=multiprocess_executor.config_schema,
    requirements=multiprocess_executor.get_requirements,
)
def in_process_unless_steps_overlap(init_context: InitExecutorContext) -> Executor:
    config = dict(init_context.executor_config)
    forkserver = config.get("start_method", {}).get("forkserver")
    if forkserver is not None:
        preload = [*forkserver.get("preload_modules", []), *instance_modules(init_context.instance)]
        config["start_method"] = {"forkserver": {"preload_modules": preload}}
    multiprocess = multiprocess_executor.executor_creation_fn(
        InitExecutorContext(
            job=init_context.job,
            executor_def=multiprocess_executor,
            executor_config=config,
            instance=init_context.instance,
        )
    )
    in_process = in_process_executor.executor_creation_fn(
        InitExecutorContext(
            job=init_context.job,
            executor_def=in_process_executor,
            executor_config={"retries": config["retries"]},
            instance=init_context.instance,
        )
    )
    return ForkOnlyWhereStepsOverlap(multiprocess, in_process)
