"""Verified webhook deliveries, one item each, waiting for a sensor to take them in order.

An item is `<source>/<received ns>-<digest>.json`, in a folder (`<data>/inbox`, the local profile) or under a
bucket prefix (the cluster profile). The receiver names every item itself (the time it arrived, then a
digest of the source and the vendor's delivery id), so nothing a sender writes becomes part of a path, and
names sort in arrival order, which is what a sensor's cursor needs. An item appears whole or not at all: a
file is written aside, flushed and renamed; an object is visible once its single upload completes. Readers
take only names of that exact form from the two known sources, and never follow a link: a name crafted
elsewhere cannot lead outside.

One receiver process writes an inbox (the Kubernetes deployment runs one replica): it remembers which
delivery ids it stored, so a vendor's retry or a replay is stored once, and keeps names rising.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from unified_assets.durable import fsync_directory, write_durably
from unified_assets.webhooks.signatures import Delivery

if TYPE_CHECKING:  # the receiver of the local profile need not load DuckDB and boto3's home
    from unified_assets.places import S3Prefix

SOURCES = ("accounting", "support")
ITEM_NAME = re.compile(r"^(?P<received>\d{20})-(?P<digest>[0-9a-f]{32})\.json$")


class InboxError(ValueError):
    """A request for something that is not an inbox item; the message says what was asked."""


@dataclass(frozen=True)
class InboxItem:
    source: str
    name: str  # the cursor: items sort by it


class InboxStore(Protocol):
    """Where an inbox keeps its items: whole items by source and name."""

    where: str

    def names(self, source: str) -> list[str]:
        """The names of `source`'s items (any order; the inbox checks their form)."""

    def write(self, source: str, name: str, body: bytes) -> None:
        """Store an item whole, or not at all."""

    def read(self, source: str, name: str) -> bytes:
        """An item's body; `InboxError` when there is no such item."""


class InboxFolder:
    """Items as files, `<root>/<source>/<name>`, each written aside, flushed and renamed into place."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.where = str(self.root)

    def names(self, source: str) -> list[str]:
        folder = self.root / source
        if not folder.is_dir():
            return []
        return [entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]

    def write(self, source: str, name: str, body: bytes) -> None:
        folder = self.root / source
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / f".{name}.{os.getpid()}.tmp"
        write_durably(scratch, body)
        os.replace(scratch, folder / name)
        fsync_directory(folder)

    def read(self, source: str, name: str) -> bytes:
        path = self.root / source / name
        if path.is_symlink() or not path.is_file():
            raise InboxError(f"no inbox item {source}/{name} in {self.root}")
        return path.read_bytes()


class InboxBucket:
    """Items as objects, `<prefix>/<source>/<name>`, each one upload."""

    def __init__(self, place: S3Prefix):
        self.place = place
        self.where = place.url

    def names(self, source: str) -> list[str]:
        return [
            location.rsplit("/", 1)[1]
            for location in self.place.list_under(self.place.join(source))
        ]

    def write(self, source: str, name: str, body: bytes) -> None:
        self.place.put_bytes(self.place.join(source, name), body)

    def read(self, source: str, name: str) -> bytes:
        try:
            return self.place.get_bytes(self.place.join(source, name))
        except FileNotFoundError:
            raise InboxError(f"no inbox item {source}/{name} in {self.where}") from None


class Inbox:
    """Thread-safe for one receiver process: a delivery id already in the inbox is not stored again."""

    def __init__(self, store: InboxStore):
        self.store = store
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

    @classmethod
    def in_folder(cls, root: Path) -> Inbox:
        return cls(InboxFolder(root))

    @classmethod
    def in_bucket(cls, place: S3Prefix) -> Inbox:
        return cls(InboxBucket(place))

    @property
    def where(self) -> str:
        return self.store.where

    def put(self, delivery: Delivery) -> InboxItem | None:
        """Store a delivery; None when this delivery id was stored before (a retry or a replay)."""
        _check_source(delivery.source)
        digest = _digest(delivery)
        with self._lock:
            if digest in self._digests[delivery.source]:
                return None
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            name = f"{self._last_ns:020d}-{digest}.json"
            self.store.write(delivery.source, name, delivery.body)
            self._digests[delivery.source].add(digest)
        return InboxItem(delivery.source, name)

    def items(self, source: str, after: str | None = None) -> list[InboxItem]:
        """The source's items in arrival order, only those after the cursor `after` when given."""
        _check_source(source)
        names = sorted(name for name in self.store.names(source) if ITEM_NAME.match(name))
        return [InboxItem(source, name) for name in names if after is None or name > after]

    def read(self, item: InboxItem) -> bytes:
        _check_source(item.source)
        if not ITEM_NAME.match(item.name):
            raise InboxError(f"{item.name!r} is not an inbox item name")
        return self.store.read(item.source, item.name)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise InboxError(f"unknown webhook source {source!r}; expected one of {SOURCES}")


def _digest(delivery: Delivery) -> str:
    """Names a delivery in the inbox without putting anything the sender chose into a path."""
    return hashlib.sha256(f"{delivery.source}\0{delivery.delivery_id}".encode()).hexdigest()[:32]
