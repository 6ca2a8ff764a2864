"""Writing files so that a crash leaves the old state or the new one, never a torn mix: the primitives the
lake and the model registry share (write, flush to disk, rename into place, flush the folder)."""

from __future__ import annotations

import os
from pathlib import Path


def write_durably(path: Path, payload: bytes) -> None:
    """Write `payload` to a new file and flush it to disk before returning (rename it into place after)."""
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries, so a rename into it survives a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def process_alive(pid: int) -> bool:
    """Whether a writer whose pid is in a scratch file's name may still be writing it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
