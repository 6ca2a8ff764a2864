"""Where a step's stdout and stderr go under `dagster dev`: to the files the UI shows, not the terminal.

Dagster's local compute log manager copies everything a step prints to the terminal that started
`dagster dev` as well as to its files. dbt prints two lines per model and test, so every build the
automation starts wrote about 500 lines, and a first session's terminal ran to thousands of lines in
which a warning was lost. The instance (deploy/dagster.yaml) uses this manager instead: the same files
(each step's *stdout* and *stderr* tabs in the UI), without the copy. Failures still reach the terminal:
run failures are logged by the run worker outside any step's capture.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Sequence
from contextlib import contextmanager

from dagster import Field, StringSource
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import (
    IO_TYPE_EXTENSION,
    LocalComputeLogManager,
)
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils import ensure_file, touch_file


class StepLogsInFiles(LocalComputeLogManager):
    """LocalComputeLogManager without the echo to the terminal. `base_dir` defaults to where Dagster keeps
    them, `$DAGSTER_HOME/storage`."""

    @classmethod
    def config_type(cls) -> dict:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "polling_timeout": Field(float, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> StepLogsInFiles:
        config = {"base_dir": os.path.join(os.environ["DAGSTER_HOME"], "storage"), **config_value}
        return cls(inst_data=inst_data, **config)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        stdout = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        stderr = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        ensure_file(stdout)
        ensure_file(stderr)
        with redirect_to_file(sys.stdout, stdout), redirect_to_file(sys.stderr, stderr):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # as Dagster's: the capture is complete
