"""A run's result is a function of its own configuration: the same run trained alone, beside
one other run and beside seven others (other seeds, learning rates, k-shot draws and frozen
weights) gives the same bits — validation curve, test scores and trained parameters — in
float32 and in bfloat16 (docs/performance.md, Findings: in the former vmapped program of M
models bf16 runs changed with their companions, and f32 parameters by ~1e-7)."""

import jax
import numpy as np
import pytest

from harjax import train
from harjax.run import budget, loop
from harjax.run.checkpoint import RunCheckpointer
from harjax.run.compiled import StepCache
from harjax.sweeps import core
from harjax.variants import assemble
from tests.run.test_group import _planned
from tests.run.test_loop import data, env  # noqa: F401  (fixtures)

TARGET = (0, 2e-3, 5, "pretrained")
# Other seeds, learning rates, k-shot draws and frozen weights (`random`, `shuffled`).
COMPANIONS = [
    (1, 5e-3, "all", "random"),
    (2, 2e-3, 5, "pretrained"),
    (3, 5e-3, 5, "shuffled"),
    (4, 5e-3, 5, "pretrained"),
    (5, 2e-3, "all", "random"),
    (6, 5e-3, "all", "pretrained"),
    (7, 2e-3, 5, "shuffled"),
]
COMPARED = ("val_curve", "best_step", "best_val_macro_f1", "accuracy", "macro_f1", "test")


def _trees(run):
    """(last trainable tree, best trainable tree) from the run's final checkpoint."""
    config = run.config
    built = assemble.assemble(
        config,
        num_classes=len(run.data.class_names),
        num_channels=run.data.dataset.num_channels,
        rng=jax.random.key(int(config.seed)),
        backbone=core.BackboneCache().get(config),
    )
    template, backbone_hash = built.trainable, built.backbone_hash
    optimizer = train.optimizer_from_config(budget.resolve(config, len(run.train_indices)))
    like = train.create_train_state(jax.random.key_data(jax.random.key(0)), template, optimizer)
    checkpointer = RunCheckpointer(run.directory)
    try:
        state, best, _ = checkpointer.restore(like, template, backbone_hash=backbone_hash)
    finally:
        checkpointer.close()
    return state.params, best


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_run_gives_the_same_bits_alone_and_in_programs_of_2_and_8(
    tmp_path,
    data,  # noqa: F811
    tiny_llama_dir,
    dtype,
):
    def planned(name, settings):
        runs = _planned(tmp_path, data, tiny_llama_dir, name, settings)
        for run in runs:
            run.config.backbone.dtype = dtype
        return runs

    steps = StepCache()  # one cache for every run, as in a sweep
    alone = planned("alone", [TARGET])
    run = alone[0]
    want = loop.train_and_evaluate(
        run.config,
        run.directory,
        data=data,
        train_indices=run.train_indices,
        progress=False,
        tags=run.tags,
        steps=steps,
    )
    assert want["compute_dtype"]["name"] == dtype
    two = planned("two", [TARGET, COMPANIONS[0]])
    eight = planned("eight", COMPANIONS[1:4] + [TARGET] + COMPANIONS[4:])  # not first
    got_two = loop.train_group(two, backbones=core.BackboneCache(), progress=False, steps=steps)
    got_eight = loop.train_group(eight, backbones=core.BackboneCache(), progress=False, steps=steps)
    want_trees = _trees(alone[0])
    for name, got, run in (("of 2", got_two[0], two[0]), ("of 8", got_eight[3], eight[3])):
        for key in COMPARED:
            assert got[key] == want[key], (dtype, name, key)
        for got_tree, want_tree in zip(_trees(run), want_trees, strict=True):
            jax.tree.map(np.testing.assert_array_equal, got_tree, want_tree)
    # The companions trained too (a group of runs that all stood still would prove nothing).
    assert len({r["best_val_macro_f1"] for r in got_eight}) > 1
