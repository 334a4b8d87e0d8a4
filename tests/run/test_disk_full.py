"""A full disk is one clear error: no orbax thread tracebacks, no TensorBoard exit tracebacks."""

import errno
import shutil
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest

from harjax.run import checkpoint as checkpoint_lib

STATE = {"head": {"kernel": np.ones((256, 256), np.float32)}}  # 256 KiB


def test_a_checkpoint_the_disk_cannot_hold_is_refused_before_orbax_writes(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 20, 10 << 20, 200_000))
    checkpointer = checkpoint_lib.RunCheckpointer(tmp_path)
    with pytest.raises(OSError, match=r"no space left on device for a checkpoint") as error:
        checkpointer.save(4, STATE, STATE, {"backbone_hash": "h"})
    assert error.value.errno == errno.ENOSPC
    assert checkpointer.latest_step() is None and not list((tmp_path / "checkpoints").iterdir())
    checkpointer.close()


def test_tensorstore_resource_exhausted_becomes_enospc(tmp_path, monkeypatch):
    checkpointer = checkpoint_lib.RunCheckpointer(tmp_path)

    def full(*args, **kwargs):
        raise ValueError('RESOURCE_EXHAUSTED: Error writing "x": No space left on device')

    monkeypatch.setattr(checkpointer.manager, "save", full)
    with pytest.raises(OSError, match="no space left on device writing checkpoint 4") as error:
        checkpointer.save(4, STATE, STATE, {})
    assert error.value.errno == errno.ENOSPC
    checkpointer.close()


FULL_DISK_SCRIPT = """
from harjax import cli

def main(argv):
    # An atexit hook and a thread that fail like TensorBoard's writer on a full disk.
    import atexit
    atexit.register(lambda: open("/dev/full", "w").write("x") or open("/dev/full", "w").flush())
    raise OSError(28, "No space left on device", "/work/runs/r/metrics.jsonl")

cli.run(main)
"""


def test_the_command_prints_one_line_and_exits_2(harjax_env):
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_SCRIPT],
        capture_output=True,
        text=True,
        env=harjax_env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: No space left on device writing /work/runs/r/metrics.jsonl; free some space or "
        "use another --workdir (finished runs are kept: the same command resumes)"
    ]
