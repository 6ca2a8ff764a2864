"""How resources meet the environment: a field is bound to its variable through `EnvVar`, so Dagster
resolves the value when a run starts and the UI shows the variable's name, never its value."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import EnvVar


def bound_to_set_variables(variables: Mapping[str, str]) -> dict[str, EnvVar]:
    """`EnvVar`s for the fields (field -> variable) whose variable is set; unset ones keep their default
    (an `EnvVar` of an unset variable would fail the run instead)."""
    return {field: EnvVar(name) for field, name in variables.items() if os.environ.get(name)}
