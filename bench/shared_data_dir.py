"""Two sweeps on one data folder (issue 29's done-when check; results in docs/datasets/README.md).

1. `launch/fewshot.py` alone, then `--repeats` times two of them started together on a fresh
   shared `HARJAX_DATA_DIR` (so both race to prepare it) with different workdirs: both must
   exit 0 with the rows of the run alone (wall-time columns left out).
2. Two processes load two archives of one dataset (the real UCI-HAR excerpt and a copy with one
   label changed) alternately into one data folder, `--loads` times each: no load may fail, and
   every load must serve the windows of its own archive.

    nice -n 10 .venv/bin/python bench/shared_data_dir.py --root /tmp/shared_check

CPU heavy (two training processes at once): run it alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEWSHOT_FLAGS = [
    "--config",
    "configs/fewshot.py:float32",
    "--variants",
    "none,pretrained,classical",
    "--config.backbone.num_layers",
    "1",
    "--shots",
    "1",
    "--seeds",
    "1",
    "--splits",
    "1",
    "--config.sweep.with_all=false",
    "--config.train.num_steps",
    "20",
    "--config.train.min_steps",
    "10",
]
LOADER = """
import sys
from harjax.data import source
from tests.data.cache_child import digest
from tests.data.defaults import dataset_options
data_dir, manual, loads = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = dataset_options(data_dir=data_dir, manual_dir=manual)
for _ in range(loads):
    print("DIGEST", digest(source.load_dataset("uci_har", **options)), flush=True)
"""


def _digests(out: str) -> list[str]:
    """The loader's digests (tfds prints its progress on stdout too)."""
    return [line.split()[1] for line in out.splitlines() if line.startswith("DIGEST ")]


def _rows(workdir: Path) -> list[dict[str, str]]:
    with open(workdir / "results.csv") as f:
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in csv.DictReader(f)]


def _fewshot(workdir: Path, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "HARJAX_DATA_DIR": str(data_dir)}
    command = [sys.executable, "launch/fewshot.py", *FEWSHOT_FLAGS, "--workdir", str(workdir)]
    log = open(workdir.with_suffix(".log"), "w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def sweeps(root: Path, repeats: int) -> bool:
    start = time.perf_counter()
    alone = _fewshot(root / "alone", root / "data_alone")
    assert alone.wait() == 0, f"the run alone failed: {root / 'alone.log'}"
    expected = _rows(root / "alone")
    print(f"alone: {len(expected)} rows in {time.perf_counter() - start:.0f} s")
    ok = True
    for index in range(repeats):
        start = time.perf_counter()
        data = root / f"data{index}"
        pair = [_fewshot(root / f"{tag}{index}", data) for tag in "ab"]
        codes = [process.wait() for process in pair]
        same = [
            code == 0 and _rows(root / f"{tag}{index}") == expected
            for tag, code in zip("ab", codes)
        ]
        ok &= all(same)
        print(
            f"pair {index + 1}: exit {codes}, rows equal to alone {same}, "
            f"{time.perf_counter() - start:.0f} s"
        )
    return ok


def archives(root: Path, loads: int) -> bool:
    sys.path.insert(0, str(ROOT))
    from tests.data.test_source import REAL_UCI_HAR, _relabel

    manual = {tag: root / f"manual_{tag}" for tag in "ab"}
    for folder in manual.values():
        folder.mkdir()
        shutil.copy(REAL_UCI_HAR, folder / REAL_UCI_HAR.name)
    _relabel(manual["b"] / REAL_UCI_HAR.name)
    run = lambda data, tag, n: subprocess.Popen(  # noqa: E731
        [sys.executable, "-c", LOADER, str(data), str(manual[tag]), str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    expected = {}
    for tag in "ab":
        out, err = run(root / f"alone_{tag}", tag, 1).communicate()
        expected[tag] = _digests(out)[-1]
    start = time.perf_counter()
    both = {tag: run(root / "data_archives", tag, loads) for tag in "ab"}
    ok = True
    for tag, process in both.items():
        out, err = process.communicate()
        digests = _digests(out)
        good = process.returncode == 0 and digests == [expected[tag]] * loads
        ok &= good
        print(
            f"archive {tag}: exit {process.returncode}, {len(digests)} of {loads} loads, all its "
            f"own windows: {good}" + ("" if good else f"\n{err[-2000:]}")
        )
    print(f"alternating loads took {time.perf_counter() - start:.0f} s")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="an empty scratch folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loads", type=int, default=30)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=False)
    ok = sweeps(args.root, args.repeats)
    ok &= archives(args.root, args.loads)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
