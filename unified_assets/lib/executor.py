"""How a run executes its steps: one step in the run's own process, several in processes forked from a
server that has already imported the definitions.

Dagster's default multiprocess executor spawns a fresh Python per step, and every one of them imports the
code location again (dagster, dagster-dbt, pandas: about 5 s on two cores, more under load) before its
first line of work. Two of Dagster's own options remove most of that (docs/benchmarks.md, *Per-step
overhead*, has the figures):
- a run of one step (a dbt build the automation starts, a seed, an event sensor's run) executes in the run
  worker, which has imported the definitions already;
- otherwise steps are forked from a `forkserver` that imports, once per run, the definitions, the modules
  the steps import lazily, and the instance's own storage classes (which every step process loads to write
  its events: sqlalchemy and Dagster's SQL storage, about 2 s otherwise). The three sources still extract
  concurrently, each in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator
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


class OneStepInRunProcess(Executor):
    """Delegates a run to the in-process executor when its plan has one step, else to multiprocess."""

    def __init__(self, multiprocess: Executor, in_process: Executor):
        self._multiprocess = multiprocess
        self._in_process = in_process

    @property
    def retries(self) -> Any:
        return self._multiprocess.retries

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        one_step = len(execution_plan.step_keys_to_execute) == 1
        chosen = self._in_process if one_step else self._multiprocess
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
    name="one_step_in_process_else_forked",
    config_schema=multiprocess_executor.config_schema,
    requirements=multiprocess_executor.get_requirements,
)
def one_step_in_process_else_forked(init_context: InitExecutorContext) -> Executor:
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
    return OneStepInRunProcess(multiprocess, in_process)
