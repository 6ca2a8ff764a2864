"""The benchmark harness keeps working: a tiny run writes every figure it promises (no timing asserts)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from benchmarks.__main__ import main

SMOKE = ["--scale", "0.1", "--latency-ms", "0", "--repeat", "1", "--last-day", "2026-01-12"]


@pytest.mark.timeout(120)
def test_a_smoke_size_run_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = [*SMOKE, "--only", "extraction", "incremental", "--json", str(out)]
    argv += ["--scratch", str(tmp_path / "scratch")]
    assert main(argv) == 0
    document = json.loads(out.read_text())
    extraction = document["benchmarks"]["extraction"]["figures"]
    for figure in ("sequential_wall_s", "concurrent_wall_s", "concurrent_over_sequential"):
        assert extraction[figure]["n"] == extraction[f"threads.{figure}"]["n"] == 1
        assert extraction[figure]["median"] > 0
    for table in ("invoices", "purchase_orders", "support_tickets"):
        assert extraction[f"{table}.records_per_s"]["median"] > 0
        assert extraction[f"{table}.pages_per_s"]["median"] > 0
    incremental = document["benchmarks"]["incremental"]
    assert {"incremental_over_full", "changed_records_share"} <= set(incremental["figures"])
    assert [t["figure"] for t in incremental["targets"]] == ["incremental_over_full"]
    assert document["simulator"]["rate_limits"] == "accounting=off,purchasing=off,support=off"
    assert document["machine"]["cpu"]
    assert "concurrent_over_sequential" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("last_day", "says"),
    [("2025-01-31", "is before 2026-01-01"), ("31/01/2026", "is not a date (YYYY-MM-DD)")],
)
def test_a_last_day_the_benchmarks_cannot_extract_is_refused_by_name(last_day, says, capsys):
    """Not a simulator answering HTTP 500 to an inverted window after minutes of warm-up."""
    with pytest.raises(SystemExit) as refused:
        main(["--last-day", last_day, "--only", "extraction"])
    assert refused.value.code == 2
    error = capsys.readouterr().err.replace("'", "")
    assert f"--last-day {last_day}" in error and says in error, error


def test_a_runs_phases_come_from_its_event_log():
    """Launched at 100: queued at 100.2, dequeued at 101, the worker's first event at 106, done at 110;
    the old event names (PIPELINE_*) read as the new ones, and a phase without its events is left out."""
    from benchmarks.dev_session import run_phases

    events = [
        ("RUN_ENQUEUED", 100.2),
        ("RUN_DEQUEUED", 101.0),
        ("RUN_STARTING", 101.1),
        ("RUN_START", 106.0),
        ("STEP_START", 106.5),
        ("RUN_SUCCESS", 110.0),
    ]
    phases = run_phases(events, launched_at=100.0)
    assert phases == pytest.approx(
        {
            "launch_s": 0.2,
            "queued_s": 0.8,
            "worker_start_s": 5.0,
            "execution_s": 4.0,
            "total_s": 10.0,
        }
    )
    # A run the daemon started (no launch time known) is timed from its first event.
    assert run_phases(events)["total_s"] == pytest.approx(9.8)
    assert run_phases([("RUN_START", 1.0), ("RUN_FAILURE", 3.0)]) == {
        "execution_s": 2.0,
        "total_s": 2.0,
    }


def test_event_kinds_reads_the_old_run_event_names():
    from types import SimpleNamespace

    from benchmarks.dev_session import event_kinds

    def entry(kind, stamp):
        return SimpleNamespace(
            dagster_event=SimpleNamespace(event_type_value=kind), timestamp=stamp
        )

    entries = [entry("PIPELINE_START", 1.0), SimpleNamespace(dagster_event=None, timestamp=2.0)]
    entries.append(entry("PIPELINE_SUCCESS", 3.0))
    assert event_kinds(entries) == [("RUN_START", 1.0), ("RUN_SUCCESS", 3.0)]


def test_the_instance_hour_reads_the_automation_evaluations_where_dagster_dev_keeps_them(tmp_path):
    """The SQLite tables the benchmark reads are where a local instance stores what the daemon records."""
    from dagster import DagsterInstance, evaluate_automation_conditions
    from dagster._core.definitions.declarative_automation.serialized_objects import (
        AutomationConditionEvaluationWithRunIds,
    )

    from benchmarks.instance_hour import folder_mb, schedule_tables
    from unified_assets.definitions import defs

    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert schedule_tables(tmp_path)["evaluations"] == 0
        evaluated = evaluate_automation_conditions(defs=defs, instance=instance)
        records = [
            AutomationConditionEvaluationWithRunIds(result.serializable_evaluation, frozenset())
            for result in evaluated.results
        ]
        instance.schedule_storage.add_auto_materialize_asset_evaluations(
            evaluation_id=1, asset_evaluations=records
        )
        tables = schedule_tables(tmp_path)
    assert tables["evaluations"] == len(records) > 0
    assert 0 < tables["evaluations_mb"] < folder_mb(tmp_path)
    assert tables["ticks"] == 0


def test_a_step_in_the_run_process_waits_for_the_run_start_or_the_step_before_it():
    """Forked steps count from their launch; steps run one after another in the run's process count from
    the run's start or the end of the step before, not from the run's start each."""
    from types import SimpleNamespace

    from benchmarks.steps import step_overheads

    def at(timestamp: float, kind: str, step: str | None = None) -> SimpleNamespace:
        event = SimpleNamespace(event_type_value=kind, step_key=step)
        return SimpleNamespace(timestamp=timestamp, dagster_event=event)

    in_process = [
        at(10.0, "PIPELINE_START"),
        at(10.1, "STEP_START", "dbt"),
        at(20.0, "STEP_SUCCESS", "dbt"),
        at(20.2, "STEP_START", "sentiment"),
        at(22.0, "STEP_SUCCESS", "sentiment"),
        at(22.1, "STEP_START", "mart"),
    ]
    assert step_overheads(in_process) == pytest.approx({"dbt": 0.1, "sentiment": 0.2, "mart": 0.1})
    forked = [
        at(10.0, "RUN_START"),
        at(10.1, "STEP_WORKER_STARTING", "invoices"),
        at(10.2, "STEP_WORKER_STARTING", "tickets"),
        at(19.0, "STEP_START", "invoices"),
        at(19.5, "STEP_SUCCESS", "invoices"),
        at(19.6, "STEP_START", "tickets"),
    ]
    assert step_overheads(forked) == pytest.approx({"invoices": 8.9, "tickets": 9.4})


@pytest.mark.timeout(120)
def test_the_dlt_peer_lands_the_same_records_and_its_ratio_is_written(tmp_path, monkeypatch):
    """Issue 23's yardstick: both sides extract the same window from one simulator, each pair lands the
    same ids, and records/s, peak memory and the ratio are figures. Invoices only (QuickBooks: the dlt
    side's own auth, paging and cursor): every source is a worker process a side to start and warm up."""
    from benchmarks import versus_dlt

    monkeypatch.setattr(versus_dlt, "MEASURED_TABLES", ("invoices",))
    out = tmp_path / "figures.json"
    argv = [*SMOKE, "--only", "versus_dlt", "--json", str(out)]
    argv += ["--scratch", str(tmp_path / "scratch")]
    assert main(argv) == 0
    versus = json.loads(out.read_text())["benchmarks"]["versus_dlt"]
    figures, facts = versus["figures"], versus["facts"]
    for side in ("project", "dlt"):
        assert figures[f"invoices.{side}_records_per_s"]["median"] > 0
        assert figures[f"invoices.{side}_peak_rss_mb"]["median"] > 50
    assert figures["invoices.project_over_dlt"]["n"] == 1
    assert facts["pairs_with_parity"] == 1 and facts["invoices.records"] > 0
    assert facts["window"] == "2026-01-01..2026-01-12"


@pytest.mark.timeout(60)
def test_the_dlt_peer_lands_the_simulators_truth_for_each_source(
    demo_config, tmp_path, monkeypatch
):
    """dlt's side as `benchmarks/dlt_peer.py` configures it (auth, paging, the incremental window) lands
    exactly the records the simulator holds for a day, for each vendor: QuickBooks' first eight hours
    included, whose timestamps read as the day before (compared as text, dlt would drop them)."""
    from benchmarks.dlt_peer import VendorAccess, run_pipeline
    from benchmarks.versus_dlt import TABLES, landed_ids
    from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving
    from unified_assets_tests.support.truth import day_window, true_versions

    for name in ("RUNTIME__DLTHUB_TELEMETRY", "RUNTIME__LOG_LEVEL", "DLT_DATA_DIR"):
        monkeypatch.setenv(name, "")  # restored afterwards: run_pipeline sets them for dlt
    world = frozen_world(demo_config)
    day = date(2026, 3, 3)
    with serving(world) as server:
        for table in TABLES:
            run_pipeline(table, VendorAccess.of(server), *day_window(day, day), tmp_path)
    for table in TABLES:
        truth = true_versions(world, table, day, day, as_of=FROZEN_AT)
        assert truth, table
        assert sorted(landed_ids("dlt", table, tmp_path)) == sorted(r for r, _ in truth), table
        if table == "invoices":
            assert any(moment.hour < 8 for _, moment in truth), "no invoice in the first hours"


def test_a_parity_failure_names_the_ids_only_one_side_landed():
    from benchmarks.versus_dlt import ParityError, SideRun, check_parity

    project = SideRun("project", 1.0, 300.0, "VmHWM", {"invoices": ["1", "2", "3", "3"]})
    dlt = SideRun("dlt", 1.0, 250.0, "VmHWM", {"invoices": ["2", "3", "4"]})
    with pytest.raises(ParityError) as failed:
        check_parity("invoices", project, dlt)
    message = str(failed.value)
    assert "the project landed 4 rows, dlt 3" in message
    assert "in the project's: 1, 3;" in message and "in dlt's: 4" in message
    check_parity("invoices", project, project)
