"""The code location: every domain's definitions, gathered from `unified_assets/defs` (one folder a
domain; see README's layout), with the executor the runs use. Nothing is defined here."""

from pathlib import Path

from dagster import Definitions, load_from_defs_folder

from unified_assets.lib.executor import forked_steps_config, one_step_in_process_else_forked

defs = Definitions.merge(
    load_from_defs_folder(path_within_project=Path(__file__).parent),
    # Extracts wait on the network, so up to 4 steps at once (Dagster's default is one per core). The
    # forked steps' server preloads this module and what the checks import lazily (scipy, for the drift
    # test), once per run rather than once per step.
    Definitions(
        executor=one_step_in_process_else_forked.configured(
            forked_steps_config([__name__, "scipy.stats"], max_concurrent=4)
        )
    ),
)
