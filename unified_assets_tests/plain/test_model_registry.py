"""The model registry, in a folder and in a bucket with its pointer in Postgres: versions complete or absent,
a production pointer that always loads, through failures and a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from unified_assets import model_registry
from unified_assets.model_registry import ARTIFACT, CARD, ModelRegistry, RegistryError
from unified_assets.places import S3Prefix


@pytest.fixture(params=["folder", "bucket"])
def registry(request, tmp_path) -> ModelRegistry:
    """The `demand_forecast` model's registry in each of its homes."""
    if request.param == "folder":
        return ModelRegistry.in_folder(tmp_path, "demand_forecast")
    s3_server = request.getfixturevalue("s3_server")
    database = request.getfixturevalue("postgres_database")
    place = S3Prefix(
        f"s3://{s3_server.create_bucket()}/models", s3_server.settings(), tmp_path / "extensions"
    )
    return ModelRegistry.in_bucket(place, database, "demand_forecast")


def overwrite(registry: ModelRegistry, version: str, name: str, payload: bytes) -> None:
    store = registry.store
    if isinstance(store, model_registry.FolderVersions):
        (store.folder / version / name).write_bytes(payload)
    else:
        store.place.put_bytes(f"{store.folder}/{version}/{name}", payload)


def test_a_registered_version_loads_with_its_card_and_can_be_promoted(registry):
    assert registry.production() is None
    version = registry.register({"weights": [1, 2, 3]}, {"metrics": {"wape": 0.3}})
    assert registry.versions() == [version]
    assert registry.load(version) == {"weights": [1, 2, 3]}
    card = registry.card(version)
    assert card["metrics"] == {"wape": 0.3} and card["version"] == version
    registry.promote(version, "first model")
    production = registry.production()
    assert production.version == version and production.artifact == {"weights": [1, 2, 3]}
    newer = registry.register({"weights": [4]}, {})
    registry.promote(newer, "better")
    assert registry.production().version == newer
    log = registry.promotions()
    assert [(p["version"], p["reason"]) for p in log] == [
        (version, "first model"),
        (newer, "better"),
    ]


@pytest.mark.parametrize(
    "registry", ["bucket"], indirect=True
)  # a folder's: the killed-writer test
def test_a_bucket_version_whose_card_never_arrived_is_not_a_version(registry):
    good = registry.register("good", {})
    registry.promote(good, "first")
    half = "20990101T000000000000Z-deadbeef"  # its writer died between the artifact and the card
    registry.store.place.put_bytes(f"{registry.store.folder}/{half}/{ARTIFACT}", b"half")
    assert registry.versions() == [good]
    with pytest.raises(RegistryError, match="no version"):
        registry.load(half)
    assert registry.production().artifact == "good"


def test_a_failure_mid_write_leaves_no_version_and_production_untouched(tmp_path, monkeypatch):
    registry = ModelRegistry.in_folder(tmp_path, "demand_forecast")
    good = registry.register("good", {})
    registry.promote(good, "first")
    calls = []

    def disk_full_on_second_file(path, payload):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        with open(path, "wb") as handle:
            handle.write(payload)

    monkeypatch.setattr(model_registry, "write_durably", disk_full_on_second_file)
    with pytest.raises(OSError, match="No space"):
        registry.register("half", {})
    assert registry.versions() == [good]
    assert list((tmp_path / "demand_forecast" / "versions").iterdir()) == [
        tmp_path / "demand_forecast" / "versions" / good
    ]
    assert registry.production().artifact == "good"


def test_a_tampered_artifact_or_card_is_refused_and_named(registry):
    version = registry.register("model", {})
    overwrite(registry, version, ARTIFACT, b"garbage")
    with pytest.raises(RegistryError, match=f"{version}.*does not match the hash"):
        registry.load(version)
    with pytest.raises(RegistryError, match="does not match"):
        registry.promote(version, "should not")
    assert registry.production_version() is None
    other = registry.register("other", {})
    overwrite(registry, other, CARD, b"{not json")
    with pytest.raises(RegistryError, match=f"{other}: unreadable card.json"):
        registry.load(other)


def test_unknown_or_crafted_versions_are_named(registry, tmp_path):
    for version in ("nope", "../../etc", ".scratch-1-x"):
        with pytest.raises(RegistryError, match="no version"):
            registry.load(version)
    with pytest.raises(ValueError, match="model name"):
        ModelRegistry.in_folder(tmp_path, "../elsewhere")


WRITER = textwrap.dedent(
    """
    import sys
    from unified_assets.model_registry import ModelRegistry
    registry = ModelRegistry.in_folder(sys.argv[1], "demand_forecast")
    n = 0
    while True:
        n += 1
        version = registry.register({"n": n, "padding": bytes(2_000_000)}, {"n": n})
        registry.promote(version, f"round {n}")
    """
)


def test_a_writer_killed_at_any_moment_leaves_every_version_and_the_pointer_loadable(tmp_path):
    registry = ModelRegistry.in_folder(tmp_path, "demand_forecast")
    for delay in (0.3, 0.55, 0.8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
        # The kill lands `delay` after this writer's first promotion, however long a loaded machine
        # takes to start a Python process: a kill before it wrote anything would test nothing.
        promoted = registry.production().version if registry.production() else None
        started = time.monotonic()
        while (current := registry.production()) is None or current.version == promoted:
            assert time.monotonic() - started < 60, "the writer never promoted a version"
            time.sleep(0.01)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:  # read while it writes
            production = registry.production()
            if production is not None:
                assert production.artifact["n"] == production.card["n"]
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        for version in registry.versions():
            assert registry.load(version)["n"] == registry.card(version)["n"]
        assert registry.production() is not None
    registry.register("after", {})  # clears the killed writers' scratch folders
    assert not list((tmp_path / "demand_forecast" / "versions").glob(".scratch-*"))
