"""The house rules of the imports (docs/architecture.md, "The house"), read from the code itself:

- plain libraries at the bottom know nothing of Dagster, nor of the layers above them;
- `lib/` (what several domains share) knows nothing of the domains;
- a domain (`defs/<domain>/`) never imports another domain: what crosses is data, named in `lib/`;
- nothing imports the definitions, which only gather;
- the simulator (`saas_simulator/`) knows nothing of the platform, and the platform reaches it through
  one seam, `unified_assets/embedded_simulator.py`;
- imports run one way: no cycle anywhere in either package;
- only the storage resource knows the data folder's variable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from unified_assets.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "unified_assets"
SIMULATOR = PROJECT_ROOT / "saas_simulator"
SIMULATOR_SEAM = "unified_assets/embedded_simulator.py"

PLAIN = [
    "settings.py",
    "embedded_simulator.py",
    "sources",
    "redaction.py",
    "durable.py",
    "pool_locks.py",
    "postgres.py",
    "duckdb_extensions.py",
    "confined_duckdb.py",
    "dbt_confinement.py",
    "dbt_manifest.py",
    "lake.py",
    "places.py",
    "ducklake.py",
    "quality.py",
    "batch_anomalies.py",
    "capacity.py",
    "forecasting",
    "model_registry.py",
    "inventory.py",
    "sentiment.py",
    "retraining.py",
    "webhooks",
    "alerts.py",
]
# A plain package's command-line entry point wires it to the platform (the webhook receiver finds its inbox
# through the storage resource); the library modules it runs stay plain.
ENTRY_POINTS = {"webhooks/__main__.py"}
DAGSTER_LAYERS = ("dagster", "dagster_dbt", "unified_assets.lib", "unified_assets.defs")
DAGSTER_LAYERS += ("unified_assets.definitions",)
DOMAINS = sorted(
    path.name
    for path in (PACKAGE / "defs").iterdir()
    if path.is_dir() and path.name != "__pycache__"
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *SIMULATOR.rglob("*.py")])


MODULES = {module_name(path) for path in source_files()}


def imports_of(path: Path, *, type_checking: bool = True) -> set[str]:
    """Every module `path` imports, at any depth of its code (functions included; TYPE_CHECKING blocks
    unless `type_checking` is false). `from package import name` is `package.name` when that is a module
    (importing a sibling, as Python does after running the package's __init__ once), else `package`."""
    tree = ast.parse(path.read_text())
    skipped = set() if type_checking else _type_checking_nodes(tree)
    names = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names


def _type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    blocks = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
    ]
    return {inner for block in blocks for statement in block.body for inner in ast.walk(statement)}


def within(name: str, layers: tuple[str, ...]) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in layers)


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("entry", PLAIN)
def test_plain_libraries_know_nothing_of_dagster_or_the_layers_above(entry):
    root = PACKAGE / entry
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    assert files
    for path in files:
        if str(path.relative_to(PACKAGE)) in ENTRY_POINTS:
            continue
        upward = {name for name in imports_of(path) if within(name, DAGSTER_LAYERS)}
        assert not upward, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(upward)}"


def test_lib_knows_nothing_of_the_domains():
    for path in sorted((PACKAGE / "lib").rglob("*.py")):
        upward = {
            name
            for name in imports_of(path)
            if within(name, ("unified_assets.defs", "unified_assets.definitions"))
        }
        assert not upward, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(upward)}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_imports_no_other_domain(domain):
    others = tuple(f"unified_assets.defs.{other}" for other in DOMAINS if other != domain)
    for path in sorted((PACKAGE / "defs" / domain).rglob("*.py")):
        crossing = {name for name in imports_of(path) if within(name, others)}
        assert not crossing, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(crossing)}"


def test_the_domains_are_the_ones_the_readme_describes():
    assert (
        sorted(
            [
                "alerts",
                "capacity",
                "forecast",
                "ingestion",
                "operations",
                "replenishment",
                "sentiment",
                "transform",
            ]
        )
        == DOMAINS
    )


def test_nothing_imports_the_definitions():
    for path in package_files():
        assert "unified_assets.definitions" not in imports_of(path), path


def test_the_simulator_knows_nothing_of_the_platform():
    """`saas_simulator` could ship on its own: no import of the platform, nor of Dagster."""
    for path in sorted(SIMULATOR.rglob("*.py")):
        platform = {
            name
            for name in imports_of(path)
            if within(name, ("unified_assets", "dagster", "dagster_dbt"))
        }
        assert not platform, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(platform)}"


def test_the_platform_reaches_the_simulator_through_one_seam():
    """Only the seam imports the simulator at run time; elsewhere it may appear in type hints."""
    reaching = sorted(
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in package_files()
        if any(within(name, ("saas_simulator",)) for name in imports_of(path, type_checking=False))
    )
    assert reaching == [SIMULATOR_SEAM]


def test_imports_run_one_way():
    """No cycle among the modules of the platform and the simulator."""
    modules = {module_name(path): path for path in source_files()}
    graph = {
        name: {
            imported for imported in imports_of(path) if imported in modules and imported != name
        }
        for name, path in modules.items()
    }
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_only_the_storage_resource_knows_the_data_folder_variable():
    """Where the platform keeps its data is passed in (the `storage` resource), never read from the
    environment deep in the code."""
    readers = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in package_files()
        if "UNIFIED_ASSETS_DATA_DIR" in path.read_text()
    ]
    assert readers == ["unified_assets/lib/storage.py"]


def test_the_tests_mirror_the_house():
    """Tests of a domain live in `unified_assets_tests/defs/<domain>/`, of the plain libraries in `plain/`,
    of the shared Dagster machinery in `lib/`, of the simulator in `simulator/`, of the deployment files in
    `deploy/`. (The `ml` group's forecast, sentiment and replenishment assets are tested together in
    `defs/forecast/`, over one built warehouse.)"""
    tests = PROJECT_ROOT / "unified_assets_tests"
    folders = {path.parent.relative_to(tests).as_posix() for path in tests.rglob("test_*.py")}
    domain_folders = {folder for folder in folders if folder.startswith("defs/")}
    assert {folder.split("/")[1] for folder in domain_folders} <= set(DOMAINS)
    assert {"plain", "lib", "simulator", "end_to_end", "deploy"} <= folders
    assert "support" not in folders


def test_conftest_files_hold_fixtures_and_hooks_only():
    """Helpers the tests import live in `unified_assets_tests/support/`, where an import can find them."""
    tests = PROJECT_ROOT / "unified_assets_tests"
    for path in sorted(tests.rglob("conftest.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
                assert "fixture" in decorators or node.name.startswith("pytest_"), (
                    f"{path.relative_to(PROJECT_ROOT)}: {node.name} belongs in support/"
                )


def test_loading_the_definitions_imports_neither_pandas_nor_the_component_catalogue():
    """Every run worker and `dagster dev`'s code server load the definitions. pandas is a second of that
    load on 2 cores (docs/benchmarks.md, section 6), so only the steps that compute with it import it; the
    catalogue of installed component types (dagster-aws's components among them) was 3 s of it, and the
    platform builds no components (`unified_assets/definitions.py`)."""
    probe = (
        "import sys, unified_assets.definitions; "
        "print([name for name in ('pandas', 'dagster_aws.components') if name in sys.modules])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert loaded.stdout.strip() == "[]", loaded.stderr
