"""launch/tpu.sh without a cloud: syntax, help, and the exact gcloud commands of DRY_RUN=1."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "tpu.sh"
BASE_ENV = {
    "DRY_RUN": "1",
    "TPU_NAME": "har-test",
    "ZONE": "us-west4-a",
    "ACCELERATOR": "v5litepod-8",
    "REPO": "https://example.com/harjax.git",
}
TUNABLES = ("PROJECT", "RUNTIME_VERSION", "BUCKET", "MOUNT", "DETACH", "SPOT", "REF")


def tpu_sh(*args: str, script: Path = SCRIPT, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in TUNABLES and k not in BASE_ENV}
    return subprocess.run(
        ["bash", str(script), *args],
        env={**clean, **BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def commands(result: subprocess.CompletedProcess) -> list[list[str]]:
    """The printed gcloud command lines, each split into argv as a shell would."""
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("gcloud ") for line in lines), result.stdout
    return [shlex.split(line) for line in lines]


def remote_command(argv: list[str]) -> str:
    (command,) = [a.removeprefix("--command=") for a in argv if a.startswith("--command=")]
    return command


def test_syntax_and_help():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    result = tpu_sh("--help")
    assert result.returncode == 0, result.stderr
    for command in ("create", "setup", "run SCRIPT", "fetch REMOTE", "delete", "DRY_RUN"):
        assert command in result.stdout, command


@pytest.mark.parametrize(
    ("accelerator", "version"),
    [
        ("v5litepod-8", "v2-alpha-tpuv5-lite"),  # one host
        ("v5litepod-32", "v2-alpha-tpuv5-lite"),  # pod slice: 8 hosts
        ("v4-32", "tpu-ubuntu2204-base"),  # pod slice: 4 hosts
        ("v5p-8", "v2-alpha-tpuv5"),
        ("v6e-8", "v2-alpha-tpuv6e"),
    ],
)
def test_create_picks_the_runtime_version(accelerator, version):
    (argv,) = commands(tpu_sh("create", ACCELERATOR=accelerator, PROJECT="my-proj", SPOT="1"))
    assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "har-test"]
    assert f"--accelerator-type={accelerator}" in argv
    assert f"--version={version}" in argv
    assert {"--zone=us-west4-a", "--project=my-proj", "--spot"} <= set(argv)


def test_create_refuses_an_unknown_accelerator_and_honours_an_explicit_version():
    result = tpu_sh("create", ACCELERATOR="tpu9-8")
    assert result.returncode == 2 and "RUNTIME_VERSION" in result.stderr
    (argv,) = commands(tpu_sh("create", ACCELERATOR="tpu9-8", RUNTIME_VERSION="v9-custom"))
    assert "--version=v9-custom" in argv and "--spot" not in argv


def test_setup_installs_on_every_worker():
    (argv,) = commands(tpu_sh("setup", REF="v0.1.0"))
    assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "har-test"]
    assert "--worker=all" in argv
    remote = remote_command(argv)
    assert remote.startswith("set -e;")
    assert "git clone --quiet https://example.com/harjax.git ~/harjax" in remote
    assert "fetch --quiet origin v0.1.0" in remote
    assert "'jax[tpu]' -e ~/harjax" in remote
    assert "--python 3.11" in remote
    assert "gcsfuse" not in remote


def test_setup_mounts_the_bucket_when_given():
    (argv,) = commands(tpu_sh("setup", BUCKET="gs://my-bucket", MOUNT="/mnt/shared"))
    remote = remote_command(argv)
    assert "gcsfuse --implicit-dirs --rename-dir-limit=200000 my-bucket /mnt/shared" in remote


def test_setup_needs_a_repository(tmp_path):
    outside_git = tmp_path / "tpu.sh"  # no git origin to default to
    shutil.copy(SCRIPT, outside_git)
    result = tpu_sh("setup", script=outside_git, REPO="")
    assert result.returncode == 2 and "REPO" in result.stderr


def test_run_passes_the_same_flags_to_every_worker():
    flags = ["--config.backbone.dtype", "bfloat16", "--dataset", "csv:/data/my dir", "--x=it's"]
    (argv,) = commands(tpu_sh("run", "train", *flags))
    assert "--worker=all" in argv
    words = shlex.split(remote_command(argv))
    python = words.index("~/harjax-venv/bin/python")
    assert words[python + 1 : python + 3 + len(flags)] == ["launch/train.py", *flags, "2>&1"]
    assert "HARJAX_DISTRIBUTED=1;" in words  # every worker joins jax.distributed
    assert "tee" in words


def test_run_detached_survives_the_ssh_session():
    (argv,) = commands(tpu_sh("run", "fewshot", "--workdir", "/mnt/harjax/runs/a", DETACH="1"))
    remote = remote_command(argv)
    assert (
        "nohup ~/harjax-venv/bin/python launch/fewshot.py --workdir /mnt/harjax/runs/a >" in remote
    )
    assert "< /dev/null &" in remote


@pytest.mark.parametrize("bad", [[], ["a;rm"], ["../train"]])
def test_run_rejects_a_bad_script_name(bad):
    result = tpu_sh("run", *bad)
    assert result.returncode == 2 and "run:" in result.stderr and not result.stdout


def test_fetch_from_worker_zero_or_a_bucket():
    (argv,) = commands(tpu_sh("fetch", "harjax/runs/train", "out/"))
    assert argv[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"]
    assert {"--recurse", "--worker=0"} <= set(argv)
    assert argv[-2:] == ["har-test:harjax/runs/train", "out/"]
    (argv,) = commands(tpu_sh("fetch", "gs://b/runs/x"))
    assert argv == ["gcloud", "storage", "cp", "--recursive", "gs://b/runs/x", "."]


def test_delete_status_and_unknown_command():
    (argv,) = commands(tpu_sh("delete"))
    assert argv == [
        "gcloud", "compute", "tpus", "tpu-vm", "delete", "har-test", "--zone=us-west4-a", "--quiet",
    ]  # fmt: skip
    (argv,) = commands(tpu_sh("status"))
    assert argv[4:6] == ["describe", "har-test"]
    result = tpu_sh("launch-the-rockets")
    assert result.returncode == 2 and "unknown command" in result.stderr
