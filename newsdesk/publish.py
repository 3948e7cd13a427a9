"""Atomic writes: a temp file beside the target, then os.replace; unchanged files stay."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def holds(path: Path, content: bytes) -> bool:
    """True when `path` already holds exactly `content` (then it is left alone, mtime and all,
    so HTTP validators stay valid)."""
    try:
        return path.read_bytes() == content
    except FileNotFoundError:
        return False


def _temp_copy(path: Path, content: bytes, sync: bool) -> str:
    """`content` in a temp file beside `path` (same file system, so a rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return temp_name


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write `content` to `path` atomically unless it already holds it; True if written."""
    if holds(path, content):
        return False
    temp_name = _temp_copy(path, content, sync=True)
    try:
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return True


class Batch:
    """Many atomic writes with one flush to disk: stage each file, then commit them together.

    Each staged file goes to a temp file beside its target; `commit` syncs once (an fsync per
    file costs a journal commit each: seconds for hundreds of feeds), then renames each into
    place, so a reader sees either the old file or the new one, never part of one.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def stage(self, path: Path, content: bytes) -> bool:
        """Queue `content` for `path` unless the file already holds it; True if queued."""
        if holds(path, content):
            return False
        self._staged.append((_temp_copy(path, content, sync=False), path))
        return True

    def commit(self) -> None:
        if not self._staged:
            return
        os.sync()  # one flush for every staged file, before any rename makes it visible
        folders = set()
        for temp_name, path in self._staged:
            os.replace(temp_name, path)
            folders.add(path.parent)
        self._staged.clear()
        for folder in folders:  # make the renames themselves durable
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        for temp_name, _ in self._staged:
            Path(temp_name).unlink(missing_ok=True)
        self._staged.clear()
