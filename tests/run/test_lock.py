"""One writer per workdir: a second process stops at once naming the holder; kill -9 frees it."""

import os
import signal
import subprocess
import sys

import pytest

from harjax.run import lock

HOLDER = """
import sys, time
from harjax.run import lock
lock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path, harjax_env):
    """Another process holding `tmp_path / "work"` (killed with SIGKILL at the end)."""
    workdir = tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir), "--sweep-flag"],
        stdout=subprocess.PIPE,
        text=True,
        env=harjax_env,
    )
    assert process.stdout.readline().strip() == "held"
    yield workdir, process
    process.kill()
    process.wait()


def test_a_second_process_stops_naming_the_holder_and_kill_9_frees_it(holder):
    workdir, process = holder
    with pytest.raises(lock.WorkdirBusyError) as error:
        lock.acquire(workdir)
    message = str(error.value)
    assert f"pid {process.pid} on " in message and "--sweep-flag" in message
    assert "started 20" in message and "another --workdir" in message
    os.kill(process.pid, signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
    process.wait()
    assert lock.acquire(workdir) is True
    assert lock.acquire(workdir) is False  # this process holds it already: no second lock
    lock.release(workdir)


def test_a_sweep_checks_the_lock_before_reading_or_discarding_runs(holder):
    from harjax.sweeps.core import Sweep

    workdir, _ = holder
    with pytest.raises(lock.WorkdirBusyError, match="is in use by pid"):
        Sweep(workdir, overwrite=True).check([])


def test_a_library_sweep_gives_the_lock_back_when_it_is_gone(tmp_path, harjax_env):
    """A notebook or test that ran a sweep in-process must not block a later command."""
    from harjax.sweeps.core import Sweep

    workdir = tmp_path / "work"
    sweep = Sweep(workdir)
    sweep.check([])
    del sweep
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir)], stdout=subprocess.PIPE, text=True,
        env=harjax_env,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "held"
    finally:
        process.kill()
        process.wait()
