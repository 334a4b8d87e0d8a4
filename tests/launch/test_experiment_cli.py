"""The launch scripts as a user runs them: fewshot sweep (with a SIGKILL and resume), train,
predict, and one clear error for each kind of bad flag."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    # A fixed 8-step budget (the default sweep's epochs budget would need >= 40 steps).
    "--config.train.epochs",
    "0",
    "--config.train.min_steps",
    "0",
    "--config.train.patience",
    "0",
    "--config.backbone.num_layers",
    "1",
    "--config.projection.strides",
    "(4, 4)",
    "--config.projection.channels",
    "4",
    "--config.lora.rank",
    "2",
    "--config.train.batch_size",
    "8",
    "--config.train.num_steps",
    "8",
    "--config.train.eval_every",
    "4",
    "--config.train.checkpoint_every",
    "2",
    "--config.train.max_eval_windows",
    "64",
    "--config.train.eval_batch_size",
    "64",
    "--config.classical.num_trees",
    "10",
    "--config.scratch.hidden_size",
    "16",
    "--config.scratch.intermediate_size",
    "32",
    "--config.scratch.num_layers",
    "1",
]


def _script(name):
    return [sys.executable, str(ROOT / "launch" / name)]


def _run(args, env, timeout=600):
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _fewshot_args(workdir, backbone):
    return [
        *_script("fewshot.py"),
        "--workdir",
        str(workdir),
        "--backbone",
        str(backbone),
        "--shots",
        "1,2",
        "--seeds",
        "2",
        "--splits",
        "1",
        "--variants",
        "pretrained,classical",
        *TINY,
    ]


def _metric_rows(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    keep = ("variant", "shots", "seed", "accuracy", "macro_f1", "trainable_params", "best_step")
    return [{k: r[k] for k in keep} for r in rows]


def test_fewshot_sweep_survives_sigkill_and_matches_uninterrupted(
    tmp_path, harjax_env, tiny_llama_dir
):
    # Two runs per group in both sweeps (groups finish as a whole, so a resumed sweep re-forms
    # exactly the groups it had not finished; a run's numbers do not depend on its group).
    per_program = ["--config.train.models_per_program", "2"]
    straight = _run(
        [*_fewshot_args(tmp_path / "straight", tiny_llama_dir), *per_program], harjax_env
    )
    assert straight.returncode == 0, straight.stderr[-3000:]
    out = tmp_path / "straight"
    for name in ("results.csv", "results.md", "shots.png", "convergence.png", "params.png"):
        assert (out / name).exists(), name
    rows = _metric_rows(out / "results.csv")
    assert len(rows) == 2 * 3 * 2  # variants x (k=1, 2, all) x seeds
    assert {r["shots"] for r in rows} == {"1", "2", "all"}
    assert "pretrained" in (out / "results.md").read_text()

    # Kill the sweep with SIGKILL while a run is mid-way (a checkpoint exists, no result yet).
    # Two models per program: the tables are rewritten after each group, so the run killed is
    # in the third group (pretrained k2 and k=all of seed 1) and two groups have finished.
    killed = tmp_path / "killed"
    grouped = [*_fewshot_args(killed, tiny_llama_dir), *per_program]
    process = subprocess.Popen(
        grouped,
        cwd=ROOT,
        env=harjax_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = killed / "runs" / "pretrained" / "k2_seed1"
    deadline = time.time() + 400
    try:
        while time.time() < deadline and process.poll() is None:
            steps = list((target / "checkpoints").glob("[0-9]*"))
            if steps and not (target / "metrics.json").exists():
                break
            time.sleep(0.05)
        assert process.poll() is None, "the sweep ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert not (killed / "runs" / "pretrained" / "kall_seed1" / "metrics.json").exists()
    # The tables of a killed sweep say they are partial.
    partial = (killed / "results.md").read_text()
    assert "of 12 runs complete** — this table is partial" in partial
    resumed = _run(grouped, harjax_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _metric_rows(killed / "results.csv") == rows
    assert "All 12 runs complete." in (killed / "results.md").read_text()
    # Fewer seeds: the tables describe this command's runs; the others are listed apart.
    fewer = _run([*_fewshot_args(killed, tiny_llama_dir), "--seeds", "1"], harjax_env)
    assert fewer.returncode == 0, fewer.stderr[-3000:]
    assert {r["seed"] for r in _metric_rows(killed / "results.csv")} == {"0"}
    markdown = (killed / "results.md").read_text()
    assert (
        "All 6 runs complete." in markdown and "Not in these tables: 6 finished run(s)" in markdown
    )
    assert "Machine: " in markdown


def test_train_then_predict_a_csv_recording(tmp_path, harjax_env, tiny_llama_dir):
    workdir = tmp_path / "train"
    result = _run(
        [*_script("train.py"), "--workdir", str(workdir), "--backbone", str(tiny_llama_dir), *TINY],
        harjax_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "metrics.json").exists() and (workdir / "confusion.png").exists()
    recording = tmp_path / "rec.csv"
    t = np.arange(0, 10.24, 0.01)  # 100 Hz, 10.24 s -> 512 samples at 50 Hz
    with open(recording, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"])
        for ti in t:
            writer.writerow([f"{ti:.2f}", np.sin(3 * ti), 9.8, 0.1, np.cos(ti), 0.0, 0.2])
    export = tmp_path / "export"
    predicted = _run(
        [
            *_script("predict.py"),
            "--checkpoint",
            str(workdir),
            "--csv",
            str(recording),
            "--export",
            str(export),
        ],
        harjax_env,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [line for line in predicted.stdout.splitlines() if line[:1].isdigit()]
    # 512 samples, window 128, stride 64 -> 7 windows starting every 1.28 s.
    assert len(lines) == 7
    starts = [float(line.split("\t")[0]) for line in lines]
    np.testing.assert_allclose(starts, np.arange(7) * 1.28, atol=1e-6)
    classes = {"PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"}
    assert all(line.split("\t")[1] in classes for line in lines)
    assert (export / "merged_params.npz").exists() and (export / "manifest.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "no_such_dataset"], "no_such_dataset"),
        (["--variants", "pretrained,bogus"], "bogus"),
        (["--backbone", "/no/such/backbone"], "/no/such/backbone"),
        (["--shots", "100000"], "fewer than k=100000"),
        (["--workdir", "/proc/harjax_not_writable"], "not writable"),
        (["--config.train.num_steps", "-5"], "config.train.num_steps must be an integer >= 1"),
        (["--config.train.eval_every", "0"], "config.train.eval_every must be an integer >= 1"),
        (["--config.train.batch_size", "0"], "config.train.batch_size must be an integer >= 1"),
        (["--config.projection.strides", "(3, 5)"], "not divisible by the projection's total"),
    ],
)
def test_bad_flags_give_one_clear_error(tmp_path, harjax_env, tiny_llama_dir, args, message):
    base = [
        "--workdir",
        str(tmp_path / "w"),
        "--backbone",
        str(tiny_llama_dir),
        "--seeds",
        "1",
        "--variants",
        "pretrained",
    ]
    result = _run([*_script("fewshot.py"), *base, *TINY, *args], harjax_env, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert message in last, result.stderr[-2000:]
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "w" / "runs").exists()  # nothing ran, nothing written


def test_train_rerun_with_another_config_refuses_instead_of_reusing(
    tmp_path, harjax_env, tiny_llama_dir
):
    workdir = tmp_path / "train"
    base = [*_script("train.py"), "--workdir", str(workdir), "--backbone", str(tiny_llama_dir)]
    first = _run([*base, *TINY], harjax_env)
    assert first.returncode == 0, first.stderr[-3000:]
    before = (workdir / "metrics.json").read_text()
    other = _run([*base, *TINY, "--config.backbone.num_layers", "2"], harjax_env)
    assert other.returncode == 2, other.stderr[-3000:]
    assert "config.backbone.num_layers: 1 -> 2" in other.stderr and "--overwrite" in other.stderr
    assert "Traceback" not in other.stderr
    assert (workdir / "metrics.json").read_text() == before
    again = _run([*base, *TINY, "--config.backbone.num_layers", "2", "--overwrite"], harjax_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (workdir / "metrics.json").read_text() != before


def test_fewshot_depth_axis_ends_on_the_depth_report(tmp_path, harjax_env, tiny_llama_dir):
    # A depth axis writes no WORKDIR/results.md: the command once trained every depth and then
    # failed reading it (exit 1, its summary lost); it must end on WORKDIR/depth.md.
    workdir = tmp_path / "depth"
    args = [*_fewshot_args(workdir, tiny_llama_dir), "--shots", "1", "--variants", "pretrained"]
    result = _run([*args, "--config.sweep.num_layers", "1,2"], harjax_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (workdir / "results.md").exists()
    for depth in (1, 2):
        assert (workdir / f"layers{depth}" / "results.md").exists(), depth
    assert (workdir / "depth.md").read_text() in result.stdout
    assert f"wrote {workdir / 'depth.md'}" in result.stdout
