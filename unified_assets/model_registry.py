"""A versioned model registry: every version an artifact and its model card, and a production pointer that
names one of them. Two homes, one behaviour:

- in a folder (`local` profile): a version is written in a scratch folder, flushed to disk and renamed into
  place in one step, so `versions/<id>` is complete or absent; the pointer is a small file replaced
  atomically, and promotions are appended to a log file;
- in a bucket with the pointer in Postgres (`cluster` profile): a version is two objects, the card written
  last, and a version exists once its card does (S3 shows an object only once its upload completes); the
  pointer is a row moved in the same transaction that logs the promotion.

Either way a reader never loads a half-written model: the card carries the artifact's SHA-256, checked on
every load, and the pointer names the old version or the new one, never neither. Which version served when
can be told afterwards from the promotions log.

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
from typing import TYPE_CHECKING, Any, Protocol

from unified_assets.durable import fsync_directory, process_alive, write_durably

if TYPE_CHECKING:
    from unified_assets.places import S3Prefix
    from unified_assets.postgres import PostgresDatabase

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


class VersionStore(Protocol):
    """Where a model's versions live."""

    def write(self, version: str, artifact: bytes, card: bytes) -> None:
        """Store both files as `version`: afterwards the version is complete, or absent if this failed."""

    def versions(self) -> list[str]: ...

    def read(self, version: str, name: str) -> bytes:
        """One file of a version; RegistryError naming it when it cannot be read."""


class PointerStore(Protocol):
    """Where a model's production pointer and its promotions log live."""

    def current(self) -> dict | None:
        """The pointer (version, promoted_at, reason), or None before the first promotion."""

    def move(self, pointer: dict) -> None:
        """Point production at `pointer["version"]` atomically and log the promotion."""

    def promotions(self) -> list[dict]:
        """Every promotion, oldest first."""


class ModelRegistry:
    def __init__(self, model: str, versions: VersionStore, pointer: PointerStore):
        self.model = _checked_model(model)
        self.store = versions
        self.pointer = pointer

    @classmethod
    def in_folder(cls, root: Path, model: str) -> ModelRegistry:
        """The `local` profile's registry: `<root>/<model>/` holds the versions, pointer and log."""
        home = Path(root) / _checked_model(model)
        return cls(model, FolderVersions(home / "versions"), FilePointer(home))

    @classmethod
    def in_bucket(cls, place: S3Prefix, database: PostgresDatabase, model: str) -> ModelRegistry:
        """The `cluster` profile's registry: versions under `<place>/<model>/versions/`, the pointer and
        the promotions log in Postgres."""
        versions = BucketVersions(place, _checked_model(model))
        return cls(model, versions, PostgresPointer(database, model))

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
        self.store.write(version, payload, json.dumps(full_card, indent=2, default=str).encode())
        return version

    def promote(self, version: str, reason: str) -> None:
        """Point production at `version` (which must load), and log why."""
        self.load(version)
        self.pointer.move(
            {"version": version, "promoted_at": datetime.now(UTC).isoformat(), "reason": reason}
        )

    # ---------------------------------------------------------------------------------- reading

    def versions(self) -> list[str]:
        return self.store.versions()

    def card(self, version: str) -> dict:
        payload = self.store.read(self._checked_version(version), CARD)
        try:
            return json.loads(payload)
        except ValueError as error:
            raise RegistryError(f"{self.model} {version}: unreadable {CARD}: {error}") from None

    def load(self, version: str) -> Any:
        card = self.card(version)
        payload = self.store.read(version, ARTIFACT)
        if hashlib.sha256(payload).hexdigest() != card.get("artifact_sha256"):
            raise RegistryError(
                f"{self.model} {version}: its {ARTIFACT} does not match the hash in its card"
            )
        return pickle.loads(payload)  # our own registry: only register() writes these files

    def production_version(self) -> str | None:
        pointer = self.pointer.current()
        return None if pointer is None else pointer["version"]

    def production(self) -> Production | None:
        version = self.production_version()
        if version is None:
            return None
        return Production(version, self.load(version), self.card(version))

    def promotions(self) -> list[dict]:
        return self.pointer.promotions()

    def _checked_version(self, version: str) -> str:
        if version.startswith(".") or "/" in version or version not in self.store.versions():
            raise RegistryError(f"{self.model}: no version {version!r} in {self.store}")
        return version


def _checked_model(model: str) -> str:
    if not model.replace("_", "").isalnum():
        raise ValueError(f"model name {model!r}: use letters, digits and underscores")
    return model


# ------------------------------------------------------------------------------- in a folder


class FolderVersions:
    """`<folder>/<version>/` per version, renamed into place whole from a scratch folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __str__(self) -> str:
        return str(self.folder)

    def write(self, version: str, artifact: bytes, card: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_scratch()
        scratch = self.folder / f".scratch-{os.getpid()}-{uuid.uuid4().hex}"
        scratch.mkdir()
        try:
            write_durably(scratch / ARTIFACT, artifact)
            write_durably(scratch / CARD, card)
            fsync_directory(scratch)
            os.rename(scratch, self.folder / version)
            fsync_directory(self.folder)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise

    def versions(self) -> list[str]:
        if not self.folder.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if not p.name.startswith("."))

    def read(self, version: str, name: str) -> bytes:
        path = self.folder / version / name
        try:
            return path.read_bytes()
        except OSError as error:
            raise RegistryError(f"{version}: cannot read {path}: {error}") from None

    def _remove_abandoned_scratch(self) -> None:
        """Scratch folders of writers that died mid-write (their process is gone)."""
        for scratch in self.folder.glob(".scratch-*"):
            pid = scratch.name.split("-")[1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(scratch, ignore_errors=True)


class FilePointer:
    """`<home>/production.json`, replaced atomically, and `<home>/promotions.jsonl`."""

    def __init__(self, home: Path):
        self.home = Path(home)

    def current(self) -> dict | None:
        path = self.home / POINTER
        if not path.exists():
            return None
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RegistryError(f"unreadable production pointer {path}: {error}") from None
        if not isinstance(pointer, dict) or "version" not in pointer:
            raise RegistryError(f"unreadable production pointer {path}: it names no version")
        return pointer

    def move(self, pointer: dict) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        temporary = self.home / f".{POINTER}.{os.getpid()}-{uuid.uuid4().hex}"
        try:
            write_durably(temporary, json.dumps(pointer, indent=2).encode())
            os.replace(temporary, self.home / POINTER)
            fsync_directory(self.home)
        finally:
            temporary.unlink(missing_ok=True)
        with open(self.home / PROMOTIONS, "a", encoding="utf-8") as log:
            log.write(json.dumps(pointer) + "\n")

    def promotions(self) -> list[dict]:
        path = self.home / PROMOTIONS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# ------------------------------------------------------------------- in a bucket and Postgres


class BucketVersions:
    """`<place>/<model>/versions/<version>/{model.pkl,card.json}`; the card is written last, and only a
    version whose card exists is listed. A writer killed between the two leaves an artifact no reader
    lists (a bucket lifecycle rule may expire it), so nothing is cleaned by process id."""

    def __init__(self, place: S3Prefix, model: str):
        self.place = place
        self.folder = place.join(model, "versions")

    def __str__(self) -> str:
        return self.folder

    def write(self, version: str, artifact: bytes, card: bytes) -> None:
        self.place.put_bytes(f"{self.folder}/{version}/{ARTIFACT}", artifact)
        self.place.put_bytes(f"{self.folder}/{version}/{CARD}", card)

    def versions(self) -> list[str]:
        cards = [name for name in self.place.list_under(self.folder) if name.endswith("/" + CARD)]
        return sorted(card.removeprefix(self.folder + "/").split("/")[0] for card in cards)

    def read(self, version: str, name: str) -> bytes:
        location = f"{self.folder}/{version}/{name}"
        try:
            return self.place.get_bytes(location)
        except FileNotFoundError:
            raise RegistryError(f"{version}: {location} does not exist") from None


class PostgresPointer:
    """A row per model in `model_production`, moved in the transaction that appends the promotion to
    `model_promotions` (both in the schema `unified_assets`, created on first use)."""

    SCHEMA = """
        create schema if not exists unified_assets;
        create table if not exists unified_assets.model_production (
            model text primary key,
            version text not null,
            promoted_at timestamptz not null,
            reason text not null
        );
        create table if not exists unified_assets.model_promotions (
            promotion bigserial primary key,
            model text not null,
            version text not null,
            promoted_at timestamptz not null,
            reason text not null
        );
    """

    def __init__(self, database: PostgresDatabase, model: str):
        self.database = database
        self.model = model

    def current(self) -> dict | None:
        rows = self._query(
            "select version, promoted_at, reason from unified_assets.model_production "
            "where model = %s",
        )
        return rows[0] if rows else None

    def move(self, pointer: dict) -> None:
        with self._connection() as con, con.transaction():
            values = (self.model, pointer["version"], pointer["promoted_at"], pointer["reason"])
            con.execute(
                "insert into unified_assets.model_production (model, version, promoted_at, reason) "
                "values (%s, %s, %s, %s) on conflict (model) do update set "
                "version = excluded.version, promoted_at = excluded.promoted_at, "
                "reason = excluded.reason",
                values,
            )
            con.execute(
                "insert into unified_assets.model_promotions (model, version, promoted_at, reason) "
                "values (%s, %s, %s, %s)",
                values,
            )

    def promotions(self) -> list[dict]:
        return self._query(
            "select version, promoted_at, reason from unified_assets.model_promotions "
            "where model = %s order by promotion",
        )

    def _query(self, sql: str) -> list[dict]:
        with self._connection() as con:
            rows = con.execute(sql, (self.model,)).fetchall()
        return [
            {"version": version, "promoted_at": promoted_at.isoformat(), "reason": reason}
            for version, promoted_at, reason in rows
        ]

    def _connection(self) -> Any:
        """A connection with the tables in place. Their creation is serialised by a transaction-level
        advisory lock: two first promotions at once would otherwise race in Postgres's catalog."""
        con = self.database.connect(autocommit=True)
        try:
            [(created,)] = con.execute(
                "select to_regclass('unified_assets.model_promotions') is not null"
            ).fetchall()
            if not created:
                with con.transaction():
                    con.execute("select pg_advisory_xact_lock(hashtext('unified_assets/registry'))")
                    con.execute(self.SCHEMA)
        except BaseException:
            con.close()
            raise
        return con
