"""Holding a step's pool for real: every step of a pool takes the pool's lock (`unified_assets.pool_locks`)
before it works, because Dagster's own slot claim can let several steps into a one-slot pool at once.

A pooled asset says so twice, in one place: `pool=` on its decorator (Dagster's queue) and `@holds_its_pool`
under it (the lock, from the `storage` resource). `test_definitions.py` checks that no pooled step lacks it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from dagster import OpExecutionContext

from unified_assets.lib.storage import PlatformStorage

Compute = TypeVar("Compute", bound=Callable[..., Any])


@contextmanager
def holding_pool(context: OpExecutionContext, storage: PlatformStorage) -> Iterator[None]:
    """Hold the lock of the pool the running step is in (its op's `pool=`) for the `with` block."""
    pool = context.op_def.pool
    if pool is None:
        raise ValueError(f"{context.op_def.name} is in no pool: give its definition `pool=`")

    def say_waiting() -> None:
        context.log.info(
            f"Waiting for pool {pool!r}: another step holds its lock, which admits one step at a time "
            "across runs and hosts"
        )

    with storage.pool_locks().hold(pool, on_wait=say_waiting):
        yield


def holds_its_pool(compute: Compute) -> Compute:
    """Run an asset's compute function (plain or generator) holding its pool's lock. Needs the `storage`
    resource; Dagster reads the parameters of `compute` itself (`functools.wraps`)."""
    if inspect.isgeneratorfunction(compute):

        @functools.wraps(compute)
        def held(context: OpExecutionContext, *args: Any, **kwargs: Any) -> Any:
            with holding_pool(context, context.resources.storage):
                yield from compute(context, *args, **kwargs)

    else:

        @functools.wraps(compute)
        def held(context: OpExecutionContext, *args: Any, **kwargs: Any) -> Any:
            with holding_pool(context, context.resources.storage):
                return compute(context, *args, **kwargs)

    held.holds_its_pool = True  # type: ignore[attr-defined]
    return held  # type: ignore[return-value]
