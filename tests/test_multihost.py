"""Multi-host training proven on one machine: 2 processes on 127.0.0.1 equal 1 process.

Each case starts tests/scripts/multihost_worker.py as two JAX processes joined through
`harjax.cli.initialize_from_env` (HARJAX_* variables, CPU collectives over gloo), each
with one or two CPU devices and its own rows of every global batch, and compares what they
computed with a single-process run on the same global batches: per-step loss, accuracy and
gradient norm, the final trainable parameters, eval logits row by row, the same through the
data pipeline's per-process sharding, and an orbax checkpoint saved and restored by both.

A persistent compilation cache shared by all runs of this module keeps the cost down: the
reference run compiles the many small init ops once and the workers reuse them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from harjax import cli
from harjax.run.environment import is_main_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5
RUN_TIMEOUT_S = 180  # per launch (~20-60 s normally); a hung collective fails instead of hanging


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(devices_per_process: int, cache_dir: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HARJAX_", "JAX_", "XLA_FLAGS"))
    }
    env.update(
        JAX_PLATFORMS="cpu",
        # Less XLA optimisation: compiling ~100 small init ops dominates; results stay
        # comparable because every run here uses the same flags.
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process} "
        "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
        JAX_COMPILATION_CACHE_DIR=cache_dir,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        HARJAX_DISTRIBUTED="0",
        PYTHONPATH=ROOT,
    )
    return env


def _launch(
    workdir, *, num_processes: int, devices_per_process: int, cache_dir: str
) -> list[dict[str, np.ndarray]]:
    """Runs the worker as `num_processes` processes; returns each process's record.

    All children are killed as soon as one fails or the deadline passes (a process whose peer
    died would otherwise wait in a collective until the heartbeat timeout); the error carries
    every child's stderr.
    """
    out_dir, ckpt_dir = workdir / "out", workdir / "ckpt"
    port = _free_port()
    children, logs = [], []
    for process_id in range(num_processes):
        env = _clean_env(devices_per_process, cache_dir)
        if num_processes > 1:
            env.update(
                HARJAX_COORDINATOR=f"127.0.0.1:{port}",
                HARJAX_NUM_PROCESSES=str(num_processes),
                HARJAX_PROCESS_ID=str(process_id),
            )
            del env["HARJAX_DISTRIBUTED"]
        log = open(workdir / f"process_{process_id}.log", "w+")  # noqa: SIM115
        logs.append(log)
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.scripts.multihost_worker",
                    str(out_dir),
                    str(ckpt_dir),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a kill reaches the child's own children too
            )
        )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    failure = None
    try:
        while any(c.poll() is None for c in children):
            failed = [i for i, c in enumerate(children) if c.returncode not in (None, 0)]
            if failed:
                failure = (
                    f"process(es) {failed} exited with {[children[i].returncode for i in failed]}"
                )
                break
            if time.monotonic() > deadline:
                failure = f"timed out after {RUN_TIMEOUT_S} s"
                break
            time.sleep(0.2)
        else:
            if any(c.returncode for c in children):
                failure = f"exit codes {[c.returncode for c in children]}"
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        outputs = []
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
            log.close()
    if failure:
        report = "\n".join(
            f"----- process {i} (exit {c.returncode}) -----\n{text[-6000:]}"
            for i, (c, text) in enumerate(zip(children, outputs))
        )
        pytest.fail(
            f"{num_processes} x {devices_per_process}-device run failed: {failure}\n{report}"
        )
    records = []
    for process_id in range(num_processes):
        path = out_dir / f"process_{process_id}.npz"
        assert path.exists(), f"process {process_id} exited 0 but wrote no {path}"
        with np.load(path) as data:
            records.append(dict(data))
    return records


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("jax_cache"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> dict[str, np.ndarray]:
    workdir = tmp_path_factory.mktemp("single_process")
    (record,) = _launch(workdir, num_processes=1, devices_per_process=1, cache_dir=cache_dir)
    assert int(record["process_count"]) == 1 and int(record["device_count"]) == 1
    return record


def _assert_equal_runs(reference: dict, record: dict, where: str) -> None:
    keys = lambda r: {k for k in r if k.startswith(("manual/", "pipeline/", "ckpt/"))}
    assert keys(record) == keys(reference), f"{where}: recorded keys differ"
    assert len([k for k in reference if "/params/" in k]) > 4, "no parameters recorded"
    for key in sorted(keys(reference)):
        np.testing.assert_allclose(
            record[key], reference[key], rtol=0, atol=TOLERANCE, err_msg=f"{where}: {key}"
        )


@pytest.mark.parametrize("devices_per_process", [1, 2])
def test_two_processes_equal_one_process(tmp_path, reference, cache_dir, devices_per_process):
    records = _launch(
        tmp_path, num_processes=2, devices_per_process=devices_per_process, cache_dir=cache_dir
    )
    for process_id, record in enumerate(records):
        where = f"process {process_id} of 2 x {devices_per_process} devices"
        assert int(record["process_count"]) == 2, where
        assert int(record["local_device_count"]) == devices_per_process, where
        assert int(record["device_count"]) == 2 * devices_per_process, where
        assert bool(record["is_main_process"]) == (process_id == 0), where
        # The global batch is the same 8 rows, not 8 rows per process.
        np.testing.assert_array_equal(record["manual/global_batch_shape"], [8, 32, 6])
        np.testing.assert_array_equal(record["pipeline/global_batch_shape"], [8, 32, 6])
        assert int(record["ckpt/restored_step"]) == 3, where
        _assert_equal_runs(reference, record, where)
    # Training moved the parameters: equality above is not two untouched initialisations.
    moved = [
        k
        for k in reference
        if k.startswith("manual/params/") and "lora/b" in k and np.abs(reference[k]).max() > 0
    ]
    assert moved, "LoRA B is still zero after training"


def test_initialize_from_env_single_process_is_a_no_op(monkeypatch):
    for name in (*cli._EXPLICIT, cli.ENV_DISTRIBUTED):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli, "_on_cloud_tpu_vm", lambda: False)
    assert cli.initialize_from_env() is False
    assert is_main_process()


EXPLICIT = {"HARJAX_COORDINATOR": "h:1", "HARJAX_NUM_PROCESSES": "2", "HARJAX_PROCESS_ID": "1"}


@pytest.mark.parametrize(
    ("env", "on_tpu_vm", "mode"),
    [
        ({}, False, "single"),
        ({}, True, "auto"),  # pod slices need no configuration
        ({"HARJAX_DISTRIBUTED": "1"}, False, "auto"),  # SLURM / Open MPI / k8s detection
        ({"HARJAX_DISTRIBUTED": "0"}, True, "single"),  # opt out on a TPU VM
        (EXPLICIT, False, "explicit"),
        (EXPLICIT, True, "explicit"),
    ],
)
def test_mode_follows_the_environment(monkeypatch, env, on_tpu_vm, mode):
    for name in (*cli._EXPLICIT, cli.ENV_DISTRIBUTED):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "_on_cloud_tpu_vm", lambda: on_tpu_vm)
    assert cli._mode() == mode


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HARJAX_COORDINATOR": "127.0.0.1:1234"}, "HARJAX_NUM_PROCESSES"),
        (
            {"HARJAX_COORDINATOR": "h:1", "HARJAX_NUM_PROCESSES": "two", "HARJAX_PROCESS_ID": "0"},
            "expected an integer",
        ),
        (
            {"HARJAX_COORDINATOR": "h:1", "HARJAX_NUM_PROCESSES": "2", "HARJAX_PROCESS_ID": "2"},
            "outside",
        ),
        ({"HARJAX_DISTRIBUTED": "maybe"}, "expected 1/true/on"),
        (
            {
                "HARJAX_DISTRIBUTED": "0",
                "HARJAX_COORDINATOR": "h:1",
                "HARJAX_NUM_PROCESSES": "2",
                "HARJAX_PROCESS_ID": "0",
            },
            "contradicts",
        ),
    ],
)
def test_bad_environment_is_reported(monkeypatch, env, message):
    for name in (*cli._EXPLICIT, cli.ENV_DISTRIBUTED):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        cli.initialize_from_env()
