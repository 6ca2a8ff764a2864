"""The benchmark harness keeps working: a tiny run writes every figure it promises (no timing asserts)."""

from __future__ import annotations

import json

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
