"""The launch scripts' shared plumbing: a dataset string is checked by the registry alone."""

import pytest

from harjax import cli
from harjax.data import registry
from harjax.data.errors import DataError
from harjax.run.environment import is_main_process


def test_dataset_check_goes_through_the_registry(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(registry, "check_spec", seen.append)
    cli.validate_dataset("csv:/anywhere")
    assert seen == ["csv:/anywhere"]  # cli parses no `csv:` prefix itself


def test_check_spec_names_what_is_wrong(tmp_path):
    registry.check_spec("smartwatch")
    registry.check_spec(f"csv:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        registry.check_spec(f"csv:{tmp_path / 'missing'}")
    with pytest.raises(DataError, match="expected 'csv:/path/to/folder'"):
        registry.check_spec("csv:")
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        registry.check_spec("nope")


def test_a_single_process_is_the_main_process():
    assert is_main_process()


def test_a_flag_mistake_is_one_line_and_exit_status_2():
    """`--config.*` before `--config` (or an unknown flag): absl's FATAL and status 1 before."""
    import subprocess
    import sys

    for flags in (
        ["--config.train.seed", "3", "--config", "configs/default.py"],
        ["--no_such_flag"],
    ):
        done = subprocess.run(
            [sys.executable, "launch/train.py", *flags],
            cwd=cli.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert flags[0].lstrip("-") in lines[0]
