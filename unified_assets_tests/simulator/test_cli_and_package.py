"""`python -m saas_simulator`, and the package's promise to stay light, Dagster-free."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import saas_simulator as simulator
from saas_simulator.__main__ import build_parser

PACKAGE_DIR = Path(simulator.__file__).parent


def test_public_api():
    assert set(simulator.__all__) >= {
        "World",
        "WorldConfig",
        "SimClock",
        "SimCredentials",
        "FaultPlan",
        "FaultSpec",
        "SimulatorServer",
        "SYSTEMS",
    }
    assert simulator.SYSTEMS == ("accounting", "purchasing", "support")


def test_no_module_imports_dagster():
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not any(n.split(".")[0].startswith("dagster") for n in names), path.name


def test_import_is_light():
    """Importing the simulator loads the standard library's web pieces and nothing heavy beyond what the
    platform has loaded already (numpy, pandas, requests). What a package loads decides its import time;
    measuring the time itself belongs in a benchmark, not a test that a busy machine could fail."""
    code = (
        "import sys; import numpy, pandas, requests; before = set(sys.modules);"
        "import saas_simulator;"
        "print(' '.join(sorted({name.split('.')[0] for name in set(sys.modules) - before})))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert loaded <= {"saas_simulator", "http", "html", "socketserver", "uuid", "_uuid", "email"}, (
        loaded
    )


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--clock", "sometimes"), ("--faults", "explode=1"), ("--rate-limits", "x=1")],
)
def test_bad_flags_are_reported_with_their_value(flag, value, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([flag, value])
    assert exited.value.code == 2
    assert value in capsys.readouterr().err


def test_the_cli_serves_and_prints_what_to_export():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saas_simulator",
            "--port",
            "0",
            "--clock",
            "frozen:2026-03-01T00:00:00Z",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("Ctrl-C"):
                break
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert {
            "UNIFIED_ASSETS_ACCOUNTING_BASE_URL",
            "UNIFIED_ASSETS_ACCOUNTING_REALM_ID",
            "UNIFIED_ASSETS_ACCOUNTING_CLIENT_ID",
            "UNIFIED_ASSETS_ACCOUNTING_CLIENT_SECRET",
            "UNIFIED_ASSETS_ACCOUNTING_REFRESH_TOKEN",
            "UNIFIED_ASSETS_PURCHASING_BASE_URL",
            "UNIFIED_ASSETS_PURCHASING_API_KEY",
            "UNIFIED_ASSETS_SUPPORT_BASE_URL",
            "UNIFIED_ASSETS_SUPPORT_EMAIL",
            "UNIFIED_ASSETS_SUPPORT_API_TOKEN",
        } <= set(exports)
        assert exports["UNIFIED_ASSETS_PURCHASING_BASE_URL"].startswith("http://127.0.0.1:")
        response = requests.get(
            f"{exports['UNIFIED_ASSETS_PURCHASING_BASE_URL']}/api/purchase_orders",
            headers={"X-COUPA-API-KEY": exports["UNIFIED_ASSETS_PURCHASING_API_KEY"]},
            timeout=10,
        )
        assert response.status_code == 200 and len(response.json()) == 50
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
