"""Verified webhook deliveries on disk, one file each, waiting for a sensor to take them in order.

`<data>/inbox/<source>/<received ns>-<digest>.json`: the receiver names every file itself (the time it
arrived, then a digest of the source and the vendor's delivery id), so nothing a sender writes becomes part
of a path, and file names sort in arrival order, which is what a sensor's cursor needs. A file appears
whole or not at all (written aside, flushed, renamed). Readers take only names of that exact form from the
two known source folders, and never follow a link: a file name crafted elsewhere cannot lead outside.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from unified_assets.durable import fsync_directory, write_durably
from unified_assets.webhooks.signatures import Delivery

SOURCES = ("accounting", "support")
ITEM_NAME = re.compile(r"^(?P<received>\d{20})-(?P<digest>[0-9a-f]{32})\.json$")


class InboxError(ValueError):
    """A request for something that is not an inbox item; the message says what was asked."""


@dataclass(frozen=True)
class InboxItem:
    source: str
    name: str  # the cursor: items sort by it


class Inbox:
    """Thread-safe for one receiver process: a delivery id already in the inbox is not stored again."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        existing = {source: self.items(source) for source in SOURCES}
        self._digests = {
            source: {ITEM_NAME.match(item.name)["digest"] for item in items}
            for source, items in existing.items()
        }
        # Names must keep rising even if the wall clock steps back, or a sensor's cursor would skip.
        self._last_ns = max(
            (int(i.name[:20]) for items in existing.values() for i in items), default=0
        )

    def put(self, delivery: Delivery) -> InboxItem | None:
        """Store a delivery; None when this delivery id was stored before (a retry or a replay)."""
        folder = self._folder(delivery.source)
        digest = _digest(delivery)
        with self._lock:
            if digest in self._digests[delivery.source]:
                return None
            folder.mkdir(parents=True, exist_ok=True)
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            name = f"{self._last_ns:020d}-{digest}.json"
            scratch = folder / f".{name}.{os.getpid()}.tmp"
            write_durably(scratch, delivery.body)
            os.replace(scratch, folder / name)
            fsync_directory(folder)
            self._digests[delivery.source].add(digest)
        return InboxItem(delivery.source, name)

    def items(self, source: str, after: str | None = None) -> list[InboxItem]:
        """The source's items in arrival order, only those after the cursor `after` when given."""
        folder = self._folder(source)
        if not folder.is_dir():
            return []
        names = sorted(
            entry.name
            for entry in os.scandir(folder)
            if ITEM_NAME.match(entry.name) and entry.is_file(follow_symlinks=False)
        )
        return [InboxItem(source, name) for name in names if after is None or name > after]

    def read(self, item: InboxItem) -> bytes:
        if not ITEM_NAME.match(item.name):
            raise InboxError(f"{item.name!r} is not an inbox item name")
        path = self._folder(item.source) / item.name
        if path.is_symlink() or not path.is_file():
            raise InboxError(f"no inbox item {item.source}/{item.name}")
        return path.read_bytes()

    def _folder(self, source: str) -> Path:
        if source not in SOURCES:
            raise InboxError(f"unknown webhook source {source!r}; expected one of {SOURCES}")
        return self.root / source


def _digest(delivery: Delivery) -> str:
    """Names a delivery in the inbox without putting anything the sender chose into a path."""
    return hashlib.sha256(f"{delivery.source}\0{delivery.delivery_id}".encode()).hexdigest()[:32]
