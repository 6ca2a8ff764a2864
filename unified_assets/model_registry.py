"""A local, versioned model registry: every version a folder (the artifact and its model card), and a
production pointer that names one of them.

Why this shape: a reader must never load a half-written model. A version is written in a scratch folder,
flushed to disk, and renamed into place in one step, so `versions/<id>` is complete or absent; the pointer
is a small file replaced atomically, so it names the old version or the new one, never neither. The card
carries the artifact's SHA-256, checked on every load. Promotions are appended to a log, so which version
served when can be told afterwards.

No Dagster here: the `ml` assets call it, and so can a notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unified_assets.durable import fsync_directory, process_alive, write_durably

ARTIFACT = "model.pkl"
CARD = "card.json"
POINTER = "production.json"
PROMOTIONS = "promotions.jsonl"


class RegistryError(RuntimeError):
    """The registry cannot give what was asked; the message names the model, version and file."""


@dataclass(frozen=True)
class Production:
    version: str
    artifact: Any
    card: dict


class ModelRegistry:
    def __init__(self, root: Path, model: str):
        if not model.replace("_", "").isalnum():
            raise ValueError(f"model name {model!r}: use letters, digits and underscores")
        self.model = model
        self.home = Path(root) / model
        self.versions_dir = self.home / "versions"

    # ---------------------------------------------------------------------------------- writing

    def register(self, artifact: Any, card: dict) -> str:
        """Store a new version; returns its id (UTC time of registration and the artifact's hash)."""
        payload = pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(payload).hexdigest()
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest[:8]}"
        full_card = {
            **card,
            "model": self.model,
            "version": version,
            "registered_at": datetime.now(UTC).isoformat(),
            "artifact_sha256": digest,
        }
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_scratch()
        scratch = self.versions_dir / f".scratch-{os.getpid()}-{uuid.uuid4().hex}"
        scratch.mkdir()
        try:
            write_durably(scratch / ARTIFACT, payload)
            write_durably(scratch / CARD, json.dumps(full_card, indent=2, default=str).encode())
            fsync_directory(scratch)
            os.rename(scratch, self.versions_dir / version)
            fsync_directory(self.versions_dir)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return version

    def promote(self, version: str, reason: str) -> None:
        """Point production at `version` (which must load), and log why."""
        self.load(version)
        pointer = {
            "version": version,
            "promoted_at": datetime.now(UTC).isoformat(),
            "reason": reason,
        }
        encoded = json.dumps(pointer, indent=2).encode()
        temporary = self.home / f".{POINTER}.{os.getpid()}-{uuid.uuid4().hex}"
        try:
            write_durably(temporary, encoded)
            os.replace(temporary, self.home / POINTER)
            fsync_directory(self.home)
        finally:
            temporary.unlink(missing_ok=True)
        with open(self.home / PROMOTIONS, "a", encoding="utf-8") as log:
            log.write(json.dumps(pointer) + "\n")

    # ---------------------------------------------------------------------------------- reading

    def versions(self) -> list[str]:
        if not self.versions_dir.exists():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if not p.name.startswith("."))

    def card(self, version: str) -> dict:
        path = self._version_dir(version) / CARD
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RegistryError(f"{self.model} {version}: cannot read {path}: {error}") from None

    def load(self, version: str) -> Any:
        card = self.card(version)
        path = self._version_dir(version) / ARTIFACT
        try:
            payload = path.read_bytes()
        except OSError as error:
            raise RegistryError(f"{self.model} {version}: cannot read {path}: {error}") from None
        if hashlib.sha256(payload).hexdigest() != card.get("artifact_sha256"):
            raise RegistryError(
                f"{self.model} {version}: {path} does not match the hash in its card"
            )
        return pickle.loads(payload)  # our own registry: only register() writes these files

    def production_version(self) -> str | None:
        path = self.home / POINTER
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError) as error:
            raise RegistryError(
                f"{self.model}: unreadable production pointer {path}: {error}"
            ) from None

    def production(self) -> Production | None:
        version = self.production_version()
        if version is None:
            return None
        return Production(version, self.load(version), self.card(version))

    def _version_dir(self, version: str) -> Path:
        path = self.versions_dir / version
        if version.startswith(".") or "/" in version or not path.is_dir():
            raise RegistryError(f"{self.model}: no version {version!r} in {self.versions_dir}")
        return path

    def _remove_abandoned_scratch(self) -> None:
        """Scratch folders of writers that died mid-write (their process is gone)."""
        for scratch in self.versions_dir.glob(".scratch-*"):
            pid = scratch.name.split("-")[1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(scratch, ignore_errors=True)
