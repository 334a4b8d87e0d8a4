"""One data_dir shared by several processes: prepared once, never mixed, never half-read.

Real processes (`tests/data/cache_child.py`), lined up with marker files so that the overlap
the tests need happens on every run, not by chance.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from harjax.data import source
from tests.data.cache_child import _wait_for, digest
from tests.data.defaults import dataset_options
from tests.data.test_source import REAL_UCI_HAR, _relabel

ROOT = Path(__file__).resolve().parents[2]


def _csv_folder(folder: Path) -> Path:
    folder.mkdir()
    t = np.arange(700) / 50.0
    for index, label in enumerate(("walk", "sit")):
        rows = ["timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject"]
        for time in t:
            values = ",".join(f"{np.sin(2 * np.pi * (index + 1) * time + c):.5f}" for c in range(6))
            rows.append(f"{time:.2f},{values},{label},s{index}")
        (folder / f"{label}.csv").write_text("\n".join(rows) + "\n")
    return folder


def _start(spec, data_dir, sync, tag, other, *, mode, manual=None):
    command = [sys.executable, "-m", "tests.data.cache_child", str(spec), str(data_dir)]
    command += [str(sync), tag, other, "--mode", mode]
    if manual is not None:
        command += ["--manual", str(manual)]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(process) -> dict:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _reference(spec, data_dir, manual=None) -> str:
    options = dataset_options(data_dir=data_dir, manual_dir=manual)
    return digest(source.load_dataset(spec, **options))


def test_two_processes_preparing_the_same_data_both_get_the_same_windows(tmp_path):
    spec = f"csv:{_csv_folder(tmp_path / 'csv')}"
    sync = tmp_path / "sync"
    sync.mkdir()
    first = _start(spec, tmp_path / "shared", sync, "a", "b", mode="race")
    second = _start(spec, tmp_path / "shared", sync, "b", "a", mode="race")
    results = [_result(first), _result(second)]
    expected = _reference(spec, tmp_path / "alone")
    assert [r["digest"] for r in results] == [expected, expected]
    assert results[0]["dir"] == results[1]["dir"] and results[0]["windows"] > 0
    # Only one of them prepared: the other found the windows published.
    assert sum((sync / f"entered-{tag}").exists() for tag in "ab") == 1


def test_two_archives_of_one_dataset_never_touch_each_others_windows(tmp_path):
    manual_a, manual_b = tmp_path / "a", tmp_path / "b"
    for folder in (manual_a, manual_b):
        folder.mkdir()
        shutil.copy(REAL_UCI_HAR, folder / REAL_UCI_HAR.name)
    _relabel(manual_b / REAL_UCI_HAR.name)
    expected = {
        tag: _reference("uci_har", tmp_path / f"alone_{tag}", manual)
        for tag, manual in (("a", manual_a), ("b", manual_b))
    }
    assert expected["a"] != expected["b"]
    sync = tmp_path / "sync"
    sync.mkdir()
    shared = tmp_path / "shared"
    # a opens its windows without reading them; b prepares its own archive meanwhile.
    holder = _start("uci_har", shared, sync, "a", "b", mode="hold", manual=manual_a)
    other = _start("uci_har", shared, sync, "b", "a", mode="after", manual=manual_b)
    found = {"a": _result(holder), "b": _result(other)}
    assert {tag: found[tag]["digest"] for tag in "ab"} == expected
    assert found["a"]["untouched"]  # b neither deleted nor rewrote what a was reading
    # And back: a's windows are still there, served without preparing again.
    again = source.load_dataset("uci_har", **dataset_options(data_dir=shared, manual_dir=manual_a))
    assert again.builder.data_dir == found["a"]["dir"] and digest(again) == expected["a"]


def test_a_preparation_killed_midway_leaves_nothing_taken_for_finished(tmp_path):
    spec = f"csv:{_csv_folder(tmp_path / 'csv')}"
    sync = tmp_path / "sync"
    sync.mkdir()
    shared = tmp_path / "shared"
    victim = _start(spec, shared, sync, "a", "-", mode="hang")
    try:
        assert _wait_for(sync / "entered-a", 60), victim.stderr.read()[-3000:]
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate()
    leftovers = list(shared.rglob("incomplete.*"))
    assert leftovers  # tfds writes into incomplete.* and had not renamed it
    dataset = source.load_dataset(spec, **dataset_options(data_dir=shared))
    assert digest(dataset) == _reference(spec, tmp_path / "alone")
    assert not list(shared.rglob("incomplete.*"))  # the next preparer removed the leftover
