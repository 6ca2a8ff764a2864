"""What clients write to the simulator, kept as one small JSON document per kind.

The simulated world is a function of (seed, time) and needs no state, but what a client writes must outlive
the process that received it: in embedded mode every Dagster step starts its own simulator. So a store
keeps its document in memory, or in a file (replaced atomically) when given a path, and every change is made
under a lock, read-modify-write, so two threads of one server never lose each other's writes.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class JsonState:
    def __init__(self, path: Path | None, empty: Callable[[], dict[str, Any]]):
        self.path = path
        self._empty = empty
        self._memory = empty()
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        """A copy of the document as it is now."""
        with self._lock:
            return copy.deepcopy(self._load())

    @contextmanager
    def changing(self) -> Iterator[dict[str, Any]]:
        """The document to change in place; saved when the block ends without an error."""
        with self._lock:
            state = self._load()
            yield state
            self._save(state)

    def _load(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return self._memory if self.path is None else self._empty()
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            self._memory = state
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)
