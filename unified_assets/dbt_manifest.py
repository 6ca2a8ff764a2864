"""Whether the dbt project's manifest is current, and making it. Plain Python, so `scripts/bootstrap` can
ask in a blink before every `scripts/dev` and `scripts/test` (`python -m unified_assets.dbt_manifest`);
`unified_assets.lib.dbt_project` asks the same question under `dagster dev`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from unified_assets.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


def dbt_executable() -> str:
    """The dbt installed beside this interpreter: dagster-dbt looks for `dbt` on PATH, which a virtual
    environment that was never activated does not provide."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else "dbt"


def manifest_is_stale(project_dir: Path = DBT_PROJECT_DIR, manifest: Path = MANIFEST) -> bool:
    """True when the manifest is missing or older than a file of the project. Walks the project's own
    files only: dbt's output folders are skipped without being entered, since `target/` holds one folder
    per build."""
    if not manifest.exists():
        return True
    written = manifest.stat().st_mtime
    for folder, subfolders, files in os.walk(project_dir):
        if Path(folder) == Path(project_dir):
            subfolders[:] = [name for name in subfolders if name not in DBT_OUTPUT_DIRS]
        if any(os.stat(os.path.join(folder, name)).st_mtime > written for name in files):
            return True
    return False


def parse(project_dir: Path = DBT_PROJECT_DIR) -> None:
    """`dbt parse`: writes the manifest (no database connection is opened)."""
    command = [dbt_executable(), "parse", "--quiet", "--project-dir", str(project_dir)]
    subprocess.run([*command, "--profiles-dir", str(project_dir)], check=True, cwd=project_dir)


if __name__ == "__main__":
    if manifest_is_stale():
        parse()
