"""The code location: every domain's definitions, gathered from `unified_assets/defs` (one folder a
domain; see README's layout), with the executor the runs use. Nothing is defined here."""

from pathlib import Path

from dagster import Definitions, load_from_defs_folder, multiprocess_executor

defs = Definitions.merge(
    load_from_defs_folder(path_within_project=Path(__file__).parent),
    # Dagster's default is one step per core; extracts wait on the network, so run more at once.
    Definitions(executor=multiprocess_executor.configured({"max_concurrent": 4})),
)
