"""One writer per workdir: an OS lock held for the life of the process that writes there.

Two commands on one workdir (started by hand twice, or by a job array) would both train every
run, write every log line twice and race on the sweep's `results.csv`. The first process takes
an exclusive `fcntl.flock` on `WORKDIR/.harjax.lock` and keeps it until it exits; the lock
belongs to the open file, so the kernel drops it when the process dies however it dies (kill
-9 included) and no stale lock is ever left to clean up. A second process stops at once with
one line naming the holder (pid, host, command, start time, written into the lock file).

Why a lock and not per-run claims: a sweep's summary files (`results.csv`, `results.md`,
plots) belong to the whole workdir, so two writers would still race on them; a job array gives
each task its own `--workdir`. In a multi-process (pod) job only process 0 takes the lock: the
other processes of that job are its collaborators, not rivals.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

LOCK_FILE = ".harjax.lock"

# Workdirs this process holds, by resolved path: a lock is taken once per process (a second
# flock on a new descriptor of the same file would conflict with our own first one).
_held: dict[str, int] = {}


class WorkdirBusyError(ValueError):
    """Another live process writes into this workdir (a user error: exit status 2)."""


def _holder_line(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "another process (it has not written its name yet)"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
        f"{holder.get('command')}"
    )


def acquire(workdir: str | os.PathLike) -> bool:
    """Takes the workdir's lock until `release` or the end of this process.

    True when this call took it; False when this process holds it already (or is not process
    0), so that only the caller that took the lock gives it back. Raises `WorkdirBusyError`
    naming the holder when another live process has it.
    """
    from harjax.run.environment import is_main_process  # imports jax: not at module load

    workdir = Path(workdir)
    key = str(workdir.resolve())
    path = workdir / LOCK_FILE
    if key in _held or not is_main_process():
        return False
    workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirBusyError(
            f"{workdir} is in use by {_holder_line(path)}; wait for it to finish, stop it, or "
            "use another --workdir"
        ) from None
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv) or sys.executable,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    _held[key] = fd
    return True


def release(workdir: str | os.PathLike) -> None:
    """Gives the lock back before the process ends (tests, notebooks running several sweeps)."""
    fd = _held.pop(str(Path(workdir).resolve()), None)
    if fd is not None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
