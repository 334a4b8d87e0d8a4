"""End to end on the real embedded dataset with a tiny backbone: train, resume, determinism."""

import json
import os

import numpy as np
import pytest

from harjax import variants
from harjax.data.bundle import load_data
from harjax.run import loop
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def env(harjax_env):
    with pytest.MonkeyPatch.context() as patch:
        for key in ("HARJAX_CACHE", "HARJAX_DATA_DIR"):
            patch.setenv(key, harjax_env[key])
        yield harjax_env


def _config(tiny_llama_dir, variant="pretrained", steps=8):
    c = tiny_config(variant, window_length=128)
    c.backbone.spec = str(tiny_llama_dir)
    c.backbone.num_layers = 1
    c.projection.strides = (4, 4)
    c.train.batch_size = 8
    c.train.num_steps = steps
    c.train.eval_every = 4
    c.train.checkpoint_every = 4
    c.train.log_every = 2
    c.train.max_eval_windows = 64
    c.train.eval_batch_size = 64
    c.classical.num_trees = 20
    c.rocket.num_kernels = 84
    return c


@pytest.fixture(scope="module")
def data(env, tiny_llama_dir):
    return load_data(_config(tiny_llama_dir))


def test_train_writes_every_artifact_and_is_deterministic(tmp_path, data, tiny_llama_dir):
    config = _config(tiny_llama_dir)
    first = loop.train_and_evaluate(config, tmp_path / "a", data=data, progress=False)
    for name in ("metrics.json", "config.json", "stats.json", "metrics.jsonl", "confusion.png"):
        assert (tmp_path / "a" / name).exists(), name
    assert list((tmp_path / "a" / "tensorboard").iterdir())
    assert set(first["test"]["per_class_f1"]) == set(data.dataset.class_names)
    assert np.asarray(first["test"]["confusion"]).sum() == len(data.split.test)
    assert first["val_curve"]["steps"] == [4, 8]
    assert 0 < first["trainable_params"] < first["total_params"]
    # The machine is recorded with the result (results.md prints it).
    environment = first["environment"]
    assert environment["cpu"]["cores"] >= 1 and isinstance(environment["cpu"]["flags"], list)
    assert environment["packages"]["jax"] and "xla_flags" in environment
    assert first["compute_dtype"]["name"] == "float32" and first["compute_dtype"]["reason"]
    # The split's subjects are written down with the results and are disjoint.
    split = first["split"]
    assert not set(split["train_subjects"]) & set(split["test_subjects"])
    second = loop.train_and_evaluate(config, tmp_path / "b", data=data, progress=False)
    for key in ("accuracy", "macro_f1", "val_curve", "best_step"):
        assert first[key] == second[key], key


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path, data, tiny_llama_dir):
    config = _config(tiny_llama_dir, steps=12)
    full = loop.train_and_evaluate(config, tmp_path / "full", data=data, progress=False)
    # Simulate a crash after the step-8 checkpoint: drop the result and the last checkpoint.
    part = tmp_path / "part"
    loop.train_and_evaluate(config, part, data=data, progress=False)
    (part / "metrics.json").unlink()
    import shutil

    shutil.rmtree(part / "checkpoints" / "12")
    resumed = loop.train_and_evaluate(config, part, data=data, progress=False)
    for key in ("accuracy", "macro_f1", "val_curve", "best_step"):
        assert full[key] == resumed[key], key
    steps = [
        json.loads(line)["step"]
        for line in (part / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "train"
    ]
    assert steps == sorted(set(steps))  # every logged step once, after the resume too


def test_restore_on_another_backbone_is_a_clear_error(tmp_path, data, tiny_llama_dir):
    """Same config, other frozen weights behind it: the checkpoint's backbone hash refuses."""
    from harjax.run import fingerprint
    from harjax.run.checkpoint import BackboneMismatchError

    config = _config(tiny_llama_dir, steps=4)
    loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    (tmp_path / "r" / "metrics.json").unlink()
    config.backbone.num_layers = 2  # a different frozen tree -> a different content hash
    # Pretend the config is unchanged (as when the weights on disk change under one spec).
    fingerprint.record(
        tmp_path / "r", fingerprint.fingerprint(config, data, data.split.train, tags=None)
    )
    with pytest.raises(BackboneMismatchError, match="content hash"):
        loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)


@pytest.mark.parametrize("variant", ["none", "scratch", "cnn", "classical", "rocket", "random"])
def test_every_variant_runs(tmp_path, data, tiny_llama_dir, variant):
    result = loop.train_and_evaluate(
        _config(tiny_llama_dir, variant, steps=4), tmp_path / variant, data=data, progress=False
    )
    assert 0 <= result["macro_f1"] <= 1 and result["variant"] == variant
    # Every variant is scored on validation (the fitted baselines too: their settings are
    # chosen on it).
    assert 0 <= result["best_val_macro_f1"] <= 1
    fitted = not variants.get(variant).neural
    assert (result["num_steps"] == 0) == fitted and (result["backbone"]["spec"] == "none") >= fitted
    assert os.path.exists(tmp_path / variant / "confusion.png")


def test_without_validation_subjects_there_is_no_validation_score(tmp_path, data, tiny_llama_dir):
    """-1 would look like a score to a sweep choosing settings on validation."""
    import dataclasses

    from harjax.data.bundle import DataBundle

    no_val = DataBundle(
        data.dataset, dataclasses.replace(data.split, val=data.split.val[:0]), data.label_key
    )
    result = loop.train_and_evaluate(
        _config(tiny_llama_dir, "none", steps=4), tmp_path / "r", data=no_val, progress=False
    )
    assert result["best_val_macro_f1"] is None and result["val_curve"]["steps"] == []


def test_augmentation_changes_training_only_and_reproduces(tmp_path, data, tiny_llama_dir):
    """data.augment on: another trained model than off, the same one twice (seeded draws)."""
    config = _config(tiny_llama_dir, "cnn", steps=4)
    loop.train_and_evaluate(config, tmp_path / "plain", data=data, progress=False)
    config.data.augment.transforms = "rotation,time_warp"
    first = loop.train_and_evaluate(config, tmp_path / "a", data=data, progress=False)
    second = loop.train_and_evaluate(config, tmp_path / "b", data=data, progress=False)
    assert first["val_curve"] == second["val_curve"] and first["macro_f1"] == second["macro_f1"]

    def losses(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines if json.loads(line)["split"] == "train"]

    assert losses("a") == losses("b") and losses("a") != losses("plain")
    recorded = json.loads((tmp_path / "a" / "fingerprint.json").read_text())
    assert recorded["config"]["data"]["augment"]["transforms"] == "rotation,time_warp"
    assert (
        "augment"
        not in json.loads((tmp_path / "plain" / "fingerprint.json").read_text())["config"]["data"]
    )
