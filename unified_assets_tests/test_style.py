"""The code stays lint-clean and formatted: CI runs this, so a style slip fails the build early."""

import subprocess
import sys
from pathlib import Path

import pytest

from unified_assets.settings import PROJECT_ROOT

RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    result = subprocess.run(
        [str(RUFF), *command, "."], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Plain libraries at the bottom know nothing of Dagster or of the layers above them (docs/architecture.md).
PLAIN = [
    "settings.py",
    "simulator",
    "sources",
    "redaction.py",
    "durable.py",
    "confined_duckdb.py",
    "dbt_confinement.py",
    "lake.py",
    "quality.py",
    "forecasting",
    "model_registry.py",
    "inventory.py",
    "sentiment.py",
    "retraining.py",
    "webhooks",
    "alerts.py",
]
UPPER_LAYERS = ("dagster", "dagster_dbt", "unified_assets.assets", "unified_assets.checks")
UPPER_LAYERS += ("unified_assets.sensors", "unified_assets.definitions", "unified_assets.resources")


def imported_modules(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("entry", PLAIN)
def test_plain_libraries_import_nothing_from_the_layers_above(entry):
    root = PROJECT_ROOT / "unified_assets" / entry
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    assert files
    for path in files:
        upward = {
            name
            for name in imported_modules(path)
            if any(name == layer or name.startswith(layer + ".") for layer in UPPER_LAYERS)
        }
        assert not upward, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(upward)}"
