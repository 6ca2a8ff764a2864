"""What the purchasing system keeps that the platform writes: custom fields on Coupa items.

Coupa exposes an item as `GET /api/items/:id` and updates it with `PUT /api/items/:id`, custom fields under
`"custom-fields"`. Every accepted PUT that changes something is recorded with its time, so a test can tell a
write from a repeated one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saas_simulator.state import JsonState


class ItemStore:
    def __init__(self, path: Path | None = None):
        self._state = JsonState(path, lambda: {"items": {}, "updates": []})

    def custom_fields(self, item_id: int) -> dict[str, Any]:
        return dict(self._state.read()["items"].get(str(item_id), {}))

    def update(self, item_id: int, fields: dict[str, Any], at: str) -> tuple[dict[str, Any], bool]:
        """Merge `fields` into the item's custom fields; returns them and whether anything changed."""
        with self._state.changing() as state:
            current = state["items"].setdefault(str(item_id), {})
            changed = {k: v for k, v in fields.items() if current.get(k) != v}
            if changed:
                current.update(changed)
                state["updates"].append({"item_id": item_id, "at": at, "fields": changed})
            return dict(current), bool(changed)

    def updates(self) -> list[dict[str, Any]]:
        return list(self._state.read()["updates"])
