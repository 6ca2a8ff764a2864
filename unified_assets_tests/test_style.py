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
