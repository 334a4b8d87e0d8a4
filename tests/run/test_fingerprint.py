"""A run directory holds one run: another config refuses (finished or not), --overwrite discards;
a restore that does not fit the model names the checkpoint; nothing is written before checks."""

import json

import numpy as np
import pytest

from harjax.data import archives
from harjax.data.bundle import load_data
from harjax.run import fingerprint, loop
from harjax.run.checkpoint import CheckpointShapeError, RunCheckpointer
from tests.run.test_loop import _config


@pytest.fixture(scope="module")
def data(harjax_env, tiny_llama_dir):
    with pytest.MonkeyPatch.context() as patch:
        for key in ("HARJAX_CACHE", "HARJAX_DATA_DIR"):
            patch.setenv(key, harjax_env[key])
        yield load_data(_config(tiny_llama_dir))


def test_rerun_with_another_config_refuses_then_overwrite_discards(tmp_path, data, tiny_llama_dir):
    config = _config(tiny_llama_dir, steps=4)
    first = loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    same = loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    assert same == first  # the same run: its result, nothing retrained
    config.backbone.num_layers = 2
    with pytest.raises(fingerprint.StaleRunError) as error:
        loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    message = str(error.value)
    assert "config.backbone.num_layers: 1 -> 2" in message
    assert "new --workdir" in message and "--overwrite" in message
    again = loop.train_and_evaluate(
        config, tmp_path / "r", data=data, progress=False, overwrite=True
    )
    assert again["total_params"] > first["total_params"]  # really retrained with 2 layers
    assert fingerprint.recorded(tmp_path / "r")["config"]["backbone"]["num_layers"] == 2


def test_an_unfinished_run_of_another_config_refuses_and_writes_nothing(
    tmp_path, data, tiny_llama_dir
):
    config = _config(tiny_llama_dir, steps=8)
    loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    (tmp_path / "r" / "metrics.json").unlink()  # as if killed after the last checkpoint
    before = (tmp_path / "r" / "config.json").read_text()
    config.projection.channels = 6  # another projection width
    with pytest.raises(fingerprint.StaleRunError, match="config.projection.channels: 4 -> 6"):
        loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    assert (tmp_path / "r" / "config.json").read_text() == before


def test_other_training_windows_or_tags_are_another_run(tmp_path, data, tiny_llama_dir):
    config = _config(tiny_llama_dir, steps=4)
    loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False, tags={"seed": 0})
    with pytest.raises(fingerprint.StaleRunError, match="train_windows"):
        loop.train_and_evaluate(
            config, tmp_path / "r", data=data, train_indices=data.split.train[:20],
            progress=False, tags={"seed": 0},
        )  # fmt: skip
    with pytest.raises(fingerprint.StaleRunError, match="tags.seed: 0 -> 1"):
        loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False, tags={"seed": 1})


def test_a_directory_from_an_older_harjax_is_refused(tmp_path, data, tiny_llama_dir):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text(json.dumps({"macro_f1": 0.9}))
    with pytest.raises(fingerprint.StaleRunError, match="no fingerprint.json"):
        loop.train_and_evaluate(_config(tiny_llama_dir), tmp_path / "r", data=data, progress=False)


def test_restoring_a_checkpoint_of_another_shape_names_it(tmp_path):
    state = {"projection": {"conv_k3": {"kernel": np.ones((3, 6, 4), np.float32)}}}
    checkpointer = RunCheckpointer(tmp_path)
    checkpointer.save(4, state, state, {"backbone_hash": "h"})
    wider = {"projection": {"conv_k3": {"kernel": np.ones((3, 6, 8), np.float32)}}}
    with pytest.raises(CheckpointShapeError) as error:
        checkpointer.restore(wider, wider, backbone_hash="h")
    checkpointer.close()
    message = str(error.value)
    assert "checkpoints/4/state" in message
    assert "projection/conv_k3/kernel: expected (3, 6, 8), found (3, 6, 4)" in message


def test_a_failed_run_leaves_no_empty_directory(tmp_path, data, tiny_llama_dir):
    config = _config(tiny_llama_dir)
    config.backbone.spec = str(tmp_path / "missing.gguf")
    with pytest.raises(ValueError, match="missing.gguf does not exist"):
        loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    assert not (tmp_path / "r").exists()


def test_a_backbone_changed_in_place_is_another_run(tmp_path, data, tiny_llama_dir):
    """Same path, same size, same mtime: the content hash still tells the runs apart."""
    import os
    import shutil

    from safetensors.numpy import load_file, save_file

    backbone = shutil.copytree(tiny_llama_dir, tmp_path / "backbone")
    config = _config(backbone, steps=4)
    before = fingerprint.fingerprint(config, data, data.split.train)
    (tmp_path / "r").mkdir()
    fingerprint.record(tmp_path / "r", before)  # as a run that started on the old weights
    path = backbone / "model.safetensors"
    stat = path.stat()
    tensors = load_file(path)
    name = next(name for name in sorted(tensors) if "layers.0.self_attn.q_proj" in name)
    tensors[name] = tensors[name] * 2
    save_file(tensors, path, metadata={"format": "pt"})
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    after = fingerprint.fingerprint(config, data, data.split.train)
    with pytest.raises(fingerprint.StaleRunError, match="backbone_content"):
        fingerprint.check(tmp_path / "r", after)
    from harjax.weights import load_backbone

    assert after["backbone_content"] == load_backbone(backbone, num_layers=1).content_hash


def test_a_record_from_before_content_hashes_still_matches(tmp_path, data, tiny_llama_dir):
    expected = fingerprint.fingerprint(_config(tiny_llama_dir), data, data.split.train)
    old = {key: value for key, value in expected.items() if key != "backbone_content"}
    (tmp_path / "r").mkdir()
    fingerprint.record(tmp_path / "r", old)  # as written before content hashes were recorded
    fingerprint.check(tmp_path / "r", expected)
    assert fingerprint.matches(old, expected)
    assert not fingerprint.matches({**old, "harjax_version": "0"}, expected)


def test_raw_data_content_follows_the_bytes_of_a_manual_archive(tmp_path):
    import os
    import types

    archive = tmp_path / "manual" / "data.zip"
    archive.parent.mkdir()
    archive.write_bytes(b"0123456789" * 1000)
    builder = lambda: types.SimpleNamespace(  # noqa: E731  (each command makes its builder)
        manual_dir=archive.parent, ACCEPTED=("absent.zip", "data.zip"), data_dir_root=tmp_path
    )
    before = archives.raw_data_content(builder())
    stat = archive.stat()
    archive.write_bytes(b"0123456789" * 999 + b"0123456780")  # same size
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    assert archives.raw_data_content(builder()) != before
    csv_builder = types.SimpleNamespace(content_digest="abc", manual_dir=None)
    assert archives.raw_data_content(csv_builder) == "abc"


def test_a_variants_own_section_only_fingerprints_that_variant(data, tiny_llama_dir):
    """`Variant.section`: cnn's settings are no part of a `none` run (older records match)."""
    train = data.split.train[:8]
    prints = {}
    for variant in ("none", "cnn"):
        for channels in (8, 16):
            config = _config(tiny_llama_dir, variant)
            config.cnn.channels = channels
            prints[variant, channels] = fingerprint.fingerprint(config, data, train)
    assert prints["none", 8] == prints["none", 16]
    assert prints["cnn", 8] != prints["cnn", 16]
