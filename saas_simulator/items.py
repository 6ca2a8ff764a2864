"""What the purchasing system keeps that the platform writes: custom fields on Coupa items.

Coupa exposes an item as `GET /api/items/:id` and updates it with `PUT /api/items/:id`, custom fields under
`"custom-fields"`. The simulated world is a function of (seed, time) and needs no state, but what a client
writes must outlive the process that received it: in embedded mode every Dagster step starts its own
simulator, so the store persists to a JSON file (replaced atomically) when given a path. Every accepted PUT
that changes something is recorded with its time, so a test can tell a write from a repeated one.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any


class ItemStore:
    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()

    def custom_fields(self, item_id: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._load()["items"].get(str(item_id), {}))

    def update(self, item_id: int, fields: dict[str, Any], at: str) -> tuple[dict[str, Any], bool]:
        """Merge `fields` into the item's custom fields; returns them and whether anything changed."""
        with self._lock:
            state = self._load()
            current = state["items"].setdefault(str(item_id), {})
            changed = {k: v for k, v in fields.items() if current.get(k) != v}
            if changed:
                current.update(changed)
                state["updates"].append({"item_id": item_id, "at": at, "fields": changed})
                self._save(state)
            return dict(current), bool(changed)

    def updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._load()["updates"])

    def _load(self) -> dict[str, Any]:
        if not hasattr(self, "_memory"):
            self._memory = {"items": {}, "updates": []}
        if self.path is None or not self.path.exists():
            return self._memory
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            self._memory = state
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)
