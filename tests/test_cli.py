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
