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
