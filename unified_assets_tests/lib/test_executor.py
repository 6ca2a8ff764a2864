"""The code location's executor: a run whose steps can only run one after another stays in the run's
process; steps that can overlap are forked from a server that preloaded the definitions, the named modules
and the instance's storage classes."""

import os

import pytest
from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

from unified_assets.lib.executor import instance_modules, steps_can_overlap


@pytest.fixture
def instance(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        yield instance


def _job(name: str) -> ReconstructableJob:
    repository = ReconstructableRepository.for_module(
        "unified_assets_tests.support.executor_jobs", "defs", working_directory=os.getcwd()
    )
    return repository.get_reconstructable_job(name)


def _where_each_ran(instance: DagsterInstance, run_id: str) -> dict[str, dict]:
    return {
        event.dagster_event.step_key: {
            key: value.value
            for key, value in event.dagster_event.step_materialization_data.materialization.metadata.items()
        }
        for event in instance.all_logs(run_id)
        if event.dagster_event and event.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    }


def test_a_run_of_one_step_runs_it_in_the_run_process(instance):
    with execute_job(_job("one"), instance) as result:
        assert result.success
        ran = _where_each_ran(instance, result.run_id)
    assert ran["first"]["pid"] == os.getpid()


@pytest.mark.parametrize("job_name", ["a_chain", "sharing_a_pool"])
def test_steps_that_cannot_overlap_run_in_the_run_process(instance, job_name):
    with execute_job(_job(job_name), instance) as result:
        assert result.success
        ran = _where_each_ran(instance, result.run_id)
    assert len(ran) == 2
    assert {where["pid"] for where in ran.values()} == {os.getpid()}


def test_steps_that_can_overlap_are_forked_from_a_server_that_preloaded_the_named_modules(instance):
    with execute_job(_job("both"), instance) as result:
        assert result.success
        ran = _where_each_ran(instance, result.run_id)
    assert {ran["first"]["pid"], ran["second"]["pid"]}.isdisjoint({os.getpid()})
    assert ran["first"]["preloaded"] and ran["second"]["preloaded"]


def test_the_instance_storage_classes_are_preloaded(instance):
    assert "dagster._core.storage.sqlite_storage" in instance_modules(instance)


@pytest.mark.parametrize(
    ("step_deps", "pools", "overlap"),
    [
        ({"a": set()}, {"a": None}, False),
        ({"a": set(), "b": {"a"}, "c": {"b"}}, {}, False),
        (
            {
                "dbt": set(),
                "sentiment": {"dbt"},
                "training": {"dbt"},
                "mart": {"sentiment", "training"},
            },
            {
                "dbt": "warehouse",
                "sentiment": "warehouse",
                "training": "warehouse",
                "mart": "warehouse",
            },
            False,
        ),
        (
            {"invoices": set(), "orders": set()},
            {"invoices": "accounting_api", "orders": "purchasing_api"},
            True,
        ),
        (
            {"invoices": set(), "invoices_checks": {"invoices"}, "orders": set()},
            {"invoices": "accounting_api"},
            True,
        ),
        ({"a": set(), "b": {"a"}, "c": {"a"}}, {"b": None, "c": None}, True),
    ],
    ids=[
        "one step",
        "a chain",
        "siblings sharing a pool",
        "two vendors",
        "a vendor beside a check",
        "unpooled siblings",
    ],
)
def test_steps_can_overlap(step_deps, pools, overlap):
    assert steps_can_overlap(step_deps, pools) is overlap
