"""The code location: every domain's definitions, gathered from `unified_assets/defs` (one folder a
domain; see README's layout), with the executor the runs use and, on every Python asset, a link to the
function that computes it (the dbt models link to their SQL files). Nothing is defined here."""

import warnings
from pathlib import Path

from dagster import (
    BetaWarning,
    ComponentTree,
    Definitions,
    PreviewWarning,
    with_source_code_references,
)
from dagster_shared.record import replace

from unified_assets.lib.executor import forked_steps_config, in_process_unless_steps_overlap


def _gathered_from_defs_folder() -> Definitions:
    """What `load_from_defs_folder` gathers from the defs folder, without the catalogue of every
    component type the installed libraries offer that it adds for the UI's component builder (the
    platform has no components to build). Making that catalogue imports dagster-aws's components and
    describes each type: about 3 s of the 8 s the definitions took to load (docs/benchmarks.md,
    hot spots), paid by every run worker, step server and code server. Its loaders are in preview in
    Dagster 1.13; `load_from_defs_folder` silences that, and so does this."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        tree = ComponentTree.for_project(path_within_project=Path(__file__).parent)
        return tree.build_defs(Path("."))


def _with_code_references(gathered: Definitions) -> Definitions:
    """Every asset linked to the function that computes it. Code references are beta in Dagster 1.13:
    said once here rather than once per asset in every process that loads the definitions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return replace(gathered, assets=with_source_code_references(gathered.assets or []))


defs = Definitions.merge(
    _with_code_references(_gathered_from_defs_folder()),
    # Extracts wait on the network, so up to 4 steps at once (Dagster's default is one per core). The
    # forked steps' server preloads this module and what the checks import lazily (scipy, for the drift
    # test), once per run rather than once per step.
    Definitions(
        executor=in_process_unless_steps_overlap.configured(
            forked_steps_config([__name__, "scipy.stats"], max_concurrent=4)
        )
    ),
)
