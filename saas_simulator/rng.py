"""Deterministic random streams: every number in the world comes from (seed, stream, key).

Two processes that ask for the same (seed, stream, key) get the same draws, whatever else they did
before; that is what lets each Dagster step build its own copy of the world and agree with the
others.
"""

from __future__ import annotations

import random

import numpy as np

# Stream ids: fixed forever, so that adding a stream never changes the draws of an existing one.
CATALOG = 1
INCIDENTS = 2
DAY = 3
FX = 5


def numpy_rng(seed: int, stream: int, key: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, key])))


def python_rng(seed: int, stream: int, key: int = 0) -> random.Random:
    """A `random.Random` for string choices; seeding with a str is stable across processes."""
    return random.Random(f"unified-assets-sim:{seed}:{stream}:{key}")
