"""A process that opens a dataset in a shared data_dir, for the concurrency tests.

`python -m tests.data.cache_child SPEC DATA_DIR SYNC_DIR TAG OTHER [--manual DIR] [--mode M]`
prints one JSON line: the data folder it read and a digest of every window it served.
Files in SYNC_DIR line the processes up (no mocks: real processes on one file system):
- `ready-TAG` just before `load_dataset`;
- mode `race`: on entering the preparation, wait for OTHER's `ready-`, then up to 2 s for
  OTHER to enter too, so that two preparers overlap wherever nothing stops them;
- mode `hold`: open without decoding (`in_memory=False`), write `loaded-TAG`, wait for
  `done-OTHER`, then read every window (another process prepares meanwhile) and say whether
  the files of the folder it read are `untouched` (same inodes, sizes and times);
- mode `after`: wait for OTHER's `loaded-` before opening; write `done-TAG` at the end;
- mode `hang`: on entering the preparation write `entered-TAG` and sleep (to be killed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from harjax.data import source
from harjax.data.builder import HARBuilder
from tests.data.defaults import dataset_options


def _wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each file's (inode, size, mtime): what another process must leave alone."""
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def digest(dataset) -> str:
    """sha256 of every served window's signal and labels, in index order."""
    signals = dataset.read_signals(np.arange(len(dataset)))
    hasher = hashlib.sha256(np.ascontiguousarray(signals, np.float32).tobytes())
    for array in (dataset.labels, dataset.subjects, dataset.splits):
        hasher.update(np.ascontiguousarray(array, np.int64).tobytes())
    return hasher.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("spec", "data_dir", "sync", "tag", "other"):
        parser.add_argument(name)
    parser.add_argument("--manual")
    parser.add_argument("--mode", default="race")
    args = parser.parse_args()
    sync = Path(args.sync)
    original = HARBuilder._prepare

    def prepare(self, archive):
        (sync / f"entered-{args.tag}").touch()
        if args.mode == "race":
            _wait_for(sync / f"ready-{args.other}", 60)
            _wait_for(sync / f"entered-{args.other}", 2)
        if args.mode == "hang":
            time.sleep(120)
        return original(self, archive)

    HARBuilder._prepare = prepare
    if args.mode == "after":
        _wait_for(sync / f"loaded-{args.other}", 60)
    (sync / f"ready-{args.tag}").touch()
    options = dataset_options(data_dir=args.data_dir, manual_dir=args.manual)
    dataset = source.load_dataset(args.spec, **options, in_memory=args.mode != "hold")
    found = {"dir": dataset.builder.data_dir}
    if args.mode == "hold":
        before = _snapshot(Path(found["dir"]))
        (sync / f"loaded-{args.tag}").touch()
        _wait_for(sync / f"done-{args.other}", 60)
        found["untouched"] = _snapshot(Path(found["dir"])) == before
    found.update(digest=digest(dataset), windows=len(dataset))
    print(json.dumps(found), flush=True)
    (sync / f"done-{args.tag}").touch()


if __name__ == "__main__":
    main()
