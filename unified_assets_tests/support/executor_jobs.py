"""Jobs run through `unified_assets.lib.executor` from a reconstructable module (a step process must be
able to import them): each asset reports where it ran, so a test can tell in-process from forked."""

import os
import sys

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset, define_asset_job

from unified_assets.lib.executor import forked_steps_config, in_process_unless_steps_overlap

# A module nothing here imports: present in a step only if the forkserver preloaded it.
PRELOAD_ONLY = "wave"


def _where(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(
        metadata={"pid": os.getpid(), "preloaded": PRELOAD_ONLY in sys.modules}
    )


@asset
def first(context: AssetExecutionContext) -> MaterializeResult:
    return _where(context)


@asset
def second(context: AssetExecutionContext) -> MaterializeResult:
    return _where(context)


@asset(pool="one_at_a_time")
def third(context: AssetExecutionContext) -> MaterializeResult:
    return _where(context)


@asset(pool="one_at_a_time")
def fourth(context: AssetExecutionContext) -> MaterializeResult:
    return _where(context)


@asset(deps=[first])
def after_first(context: AssetExecutionContext) -> MaterializeResult:
    return _where(context)


defs = Definitions(
    assets=[first, second, third, fourth, after_first],
    jobs=[
        define_asset_job("both", selection=["first", "second"]),
        define_asset_job("one", selection=["first"]),
        define_asset_job("sharing_a_pool", selection=["third", "fourth"]),
        define_asset_job("a_chain", selection=["first", "after_first"]),
    ],
    executor=in_process_unless_steps_overlap.configured(
        forked_steps_config([__name__, PRELOAD_ONLY], max_concurrent=2)
    ),
)
