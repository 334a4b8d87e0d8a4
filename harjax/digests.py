"""Content digests of input files, computed once and cached against the file's identity.

A result depends on the bytes of its inputs (a `csv:` folder, a manual archive, a backbone
file), not on their names. Hashing gigabytes on every run is too slow, so a file's sha256 is
kept in a small JSON cache keyed by its `stat` identity — size, modification time, change time
and inode — plus a cheap content check: the sha256 of its first, middle and last 64 KiB.
Editors, `touch -r`, copies that keep times and checkouts all change the inode or the change
time (which no user tool can set back), and the sampled bytes catch a file rewritten in place
on file systems whose change times cannot be trusted; any mismatch re-hashes the whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

SAMPLE_BYTES = 1 << 16
_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (memory stays flat)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def identity(path: Path) -> dict[str, object]:
    """What must be unchanged for a cached digest of `path` to be trusted (see module doc)."""
    stat = path.stat()
    sample = hashlib.sha256()
    with open(path, "rb") as f:
        middle = max(stat.st_size // 2 - SAMPLE_BYTES // 2, 0)
        for offset in sorted({0, middle, max(stat.st_size - SAMPLE_BYTES, 0)}):
            f.seek(offset)
            sample.update(f.read(SAMPLE_BYTES))
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "device": stat.st_dev,
        "sample": sample.hexdigest()[:32],
    }


class DigestCache:
    """`{absolute path: (identity, sha256)}` in one JSON file; None keeps it in memory only.

    A damaged or unreadable cache file is treated as empty (it only saves time); writes are
    atomic, so concurrent readers never see half a file.
    """

    def __init__(self, path: Path | None):
        self.path = None if path is None else Path(path)
        self._entries: dict[str, dict] = {}
        self._dirty = False
        if self.path is not None and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text())
                self._entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._entries = {}

    def sha256(self, path: Path) -> str:
        key = str(Path(path).resolve())
        found = identity(Path(key))
        cached = self._entries.get(key)
        if cached is not None and cached.get("identity") == found:
            return cached["sha256"]
        value = file_sha256(Path(key))
        # Identity read again after hashing: a file changing meanwhile is not cached.
        if identity(Path(key)) == found:
            self._entries[key] = {"identity": found, "sha256": value}
            self._dirty = True
        return value

    def save(self) -> None:
        """Writes the cache if anything was added; a read-only location is skipped silently."""
        if self.path is None or not self._dirty:
            return
        temp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w") as f:
                json.dump(self._entries, f)
            os.chmod(temp, 0o644)  # mkstemp makes it private; the cache is shared
            os.replace(temp, self.path)
            self._dirty = False
        except OSError:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)


def tree_digest(files: Iterable[Path], root: Path, cache: DigestCache, extra: str = "") -> str:
    """One digest of several files' names (relative to `root`) and bytes, plus `extra`."""
    digest = hashlib.sha256(extra.encode())
    for path in files:
        relative = Path(path).relative_to(root).as_posix()
        digest.update(f"{relative}\0{cache.sha256(Path(path))}\n".encode())
    cache.save()
    return digest.hexdigest()
