"""The record of what a build wrote into feeds/: which files, and what each feed was made of.

It lets a rebuild skip feeds whose items did not change, and remove the files of feeds that
no longer exist without ever touching a file newsdesk did not write itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from newsdesk.publish import write_if_changed

log = logging.getLogger(__name__)

MANIFEST_NAME = ".newsdesk-manifest.json"
VERSION = 1


@dataclass
class Manifest:
    state: str = ""  # a hash of everything the whole build depended on
    feeds: dict[str, str] = field(default_factory=dict)  # slug -> hash of its items
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The manifest in `folder`, or an empty one (then every feed is checked byte by byte)."""
        path = folder / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") != VERSION:
                return cls()
            return cls(
                state=str(raw["state"]),
                feeds={str(k): str(v) for k, v in raw["feeds"].items()},
                files={
                    str(name): (int(stat[0]), int(stat[1])) for name, stat in raw["files"].items()
                },
            )
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            log.warning("manifest_unreadable path=%s error=%s; rebuilding every feed", path, error)
            return cls()

    def save(self, folder: Path) -> None:
        document = {
            "version": VERSION,
            "state": self.state,
            "feeds": dict(sorted(self.feeds.items())),
            "files": {name: list(stat) for name, stat in sorted(self.files.items())},
        }
        write_if_changed(folder / MANIFEST_NAME, (json.dumps(document, indent=1) + "\n").encode())

    def intact(self, folder: Path, name: str) -> bool:
        """True if `name` is still exactly the file this manifest recorded."""
        recorded = self.files.get(name)
        if recorded is None:
            return False
        try:
            stat = os.stat(folder / name)
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == recorded

    def all_intact(self, folder: Path) -> bool:
        return bool(self.files) and all(self.intact(folder, name) for name in self.files)

    def record(self, folder: Path, name: str) -> None:
        stat = os.stat(folder / name)
        self.files[name] = (stat.st_size, stat.st_mtime_ns)

    def carry(self, previous: Manifest, name: str) -> None:
        self.files[name] = previous.files[name]

    def remove_stale(self, previous: Manifest, folder: Path) -> list[str]:
        """Delete the files `previous` recorded that this build no longer writes."""
        removed: list[str] = []
        for name in sorted(set(previous.files) - set(self.files)):
            if not _plain_name(name):
                log.warning("manifest_entry_ignored name=%r reason=not_a_plain_file_name", name)
                continue
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
            removed.append(name)
            log.info("feed_file_removed name=%s", name)
        return removed


def _plain_name(name: str) -> bool:
    """A file directly inside the feeds folder: no separator, no dot-file, no parent."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith(".")
    )
