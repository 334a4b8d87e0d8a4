"""Training to convergence: epochs budgets, early stopping (both loops agree), exact resume."""

import shutil

import ml_collections
import numpy as np
import pytest

from harjax.run import budget, loop, program
from harjax.run.validate import problems
from harjax.sweeps import core
from tests.run.test_group import _assert_close, _planned, _sequential
from tests.run.test_loop import _config, data, env  # noqa: F401  (fixtures)


def _train_config(**fields):
    defaults = dict(
        num_steps=100, batch_size=8, eval_every=50, epochs=0.0, min_steps=0, evals_per_epoch=0
    )
    return ml_collections.ConfigDict({**defaults, **fields})


def test_epochs_resolve_to_steps_clipped_by_min_and_max():
    assert budget.resolved_num_steps(_train_config(), 50) == 100  # off: num_steps
    assert budget.resolved_num_steps(_train_config(epochs=2.0), 50) == 13  # ceil(100 / 8)
    assert budget.resolved_num_steps(_train_config(epochs=2.0, min_steps=20), 50) == 20
    assert budget.resolved_num_steps(_train_config(epochs=2.0, num_steps=10), 50) == 10
    assert budget.resolved_num_steps(_train_config(epochs=0.5), 3) == 1


def test_evals_per_epoch_tightens_eval_every():
    assert budget.resolved_eval_every(_train_config(), 400) == 50
    assert budget.resolved_eval_every(_train_config(evals_per_epoch=2), 400) == 25  # 50 / 2
    assert budget.resolved_eval_every(_train_config(evals_per_epoch=4), 8) == 1  # at least 1
    assert budget.resolved_eval_every(_train_config(evals_per_epoch=1), 4000) == 50  # at most


def test_resolve_copies_and_new_fields_are_validated(tiny_llama_dir):
    config = _config(tiny_llama_dir, steps=40)
    config.train.epochs = 1.0
    resolved = budget.resolve(config, 24)
    assert resolved.train.num_steps == 3 and config.train.num_steps == 40
    config.train.min_steps, config.train.patience = 50, -1
    config.optim.lora_learning_rate = -1.0
    found = "\n".join(problems(config))
    assert "config.train.patience must be an integer >= 0" in found
    assert "config.optim.lora_learning_rate must be a number >= 0" in found
    config.train.patience, config.optim.lora_learning_rate = 0, 0.0
    assert problems(config) == [
        "config.train.min_steps 50 must be <= config.train.num_steps 40 (the largest budget)"
    ]


def _metas(n):
    return [{"curve": [], "best_score": -1.0, "best_step": 0} for _ in range(n)]


def test_early_stopping_rule_counts_evaluations_and_respects_min_steps():
    config = _train_config(patience=2, min_steps=8)
    metas = _metas(2)
    stopping = budget.early_stopping(config, metas)
    # model 0 plateaus from step 2; model 1 keeps improving
    evals = [(2, [0.5, 0.1]), (4, [0.5, 0.2]), (6, [0.4, 0.3]), (8, [0.5, 0.4])]
    for step, scores in evals:
        _, newly = budget.record_evaluation(stopping, metas, step, scores, [True, True])
        assert newly.tolist() == [step == 8, False]  # patience reached at 6, held to min_steps
    assert metas[0]["stopped_step"] == 8 and metas[0]["best_step"] == 2
    assert "stopped_step" not in metas[1] and metas[1]["best_step"] == 8
    # restored from the metas, the state continues where it was
    again = budget.early_stopping(config, metas)
    assert again.stopped.tolist() == [True, False]
    assert again.evals_since_improvement.tolist() == [3, 0]


def _stopping_config(tiny_llama_dir, steps=12, patience=1, min_steps=0, rate=2e-3):
    config = _config(tiny_llama_dir, steps=steps)
    config.train.eval_every = 2
    config.train.patience, config.train.min_steps = patience, min_steps
    config.optim.learning_rate = rate
    return config


# A learning rate this small leaves every prediction unchanged: validation plateaus after the
# first evaluation, so the stopping step is known.
FLAT = 1e-9


@pytest.mark.parametrize("min_steps, stop", [(0, 4), (6, 6)])
def test_plateau_stops_after_patience_but_not_before_min_steps(
    tmp_path,
    data,  # noqa: F811
    tiny_llama_dir,
    min_steps,
    stop,
):
    config = _stopping_config(tiny_llama_dir, patience=1, min_steps=min_steps, rate=FLAT)
    result = loop.train_and_evaluate(config, tmp_path / "r", data=data, progress=False)
    assert result["stopped_step"] == stop and result["num_steps"] == 12
    assert result["val_curve"]["steps"] == list(range(2, stop + 1, 2))
    assert result["best_step"] == 2  # ties never replace the best tree
    assert sorted(int(p.name) for p in (tmp_path / "r" / "checkpoints").iterdir())[-1] == stop


def _planned_stopping(tmp_path, data, tiny_llama_dir, name, settings, steps=12):  # noqa: F811
    runs = _planned(tmp_path, data, tiny_llama_dir, name, settings, steps=steps)
    for run in runs:
        run.config.train.eval_every = 2
        run.config.train.patience = 2
    return runs


STOPPING = [(0, FLAT, 5, "pretrained"), (1, 5e-3, "all", "pretrained"), (2, 2e-3, 5, "random")]


def test_group_and_sequential_agree_on_early_stopping(tmp_path, data, tiny_llama_dir):  # noqa: F811
    runs = _planned_stopping(tmp_path, data, tiny_llama_dir, "group", STOPPING)
    grouped = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    alone = _sequential(_planned_stopping(tmp_path, data, tiny_llama_dir, "seq", STOPPING))
    _assert_close(grouped, alone)
    assert [r["stopped_step"] for r in grouped] == [r["stopped_step"] for r in alone]
    assert grouped[0]["stopped_step"] == 6  # the plateaued run: evals 4 and 6 without gain
    for result in grouped:
        if result["stopped_step"] is not None:
            assert result["val_curve"]["steps"][-1] == result["stopped_step"]


def test_resume_with_early_stopping_equals_uninterrupted(tmp_path, data, tiny_llama_dir):  # noqa: F811
    # patience 3: evals at 2 (best), 4, 6, 8 -> stops at 8; checkpoints at 4 and 8.
    config = _stopping_config(tiny_llama_dir, patience=3, rate=FLAT)
    full = loop.train_and_evaluate(config, tmp_path / "full", data=data, progress=False)
    assert full["stopped_step"] == 8
    part = tmp_path / "part"
    loop.train_and_evaluate(config, part, data=data, progress=False)
    (part / "metrics.json").unlink()
    # Killed after it stopped, before the result: it does not train on.
    again = loop.train_and_evaluate(config, part, data=data, progress=False)
    (part / "metrics.json").unlink()
    shutil.rmtree(part / "checkpoints" / "8")  # killed between steps 4 and 8: count restored
    resumed = loop.train_and_evaluate(config, part, data=data, progress=False)
    for result in (again, resumed):
        for key in ("accuracy", "macro_f1", "val_curve", "best_step", "stopped_step"):
            assert full[key] == result[key], key


def test_killed_group_with_early_stopping_resumes_exactly(tmp_path, data, tiny_llama_dir):  # noqa: F811
    full = loop.train_group(
        _planned_stopping(tmp_path, data, tiny_llama_dir, "full", STOPPING),
        backbones=core.BackboneCache(),
        progress=False,
    )
    runs = _planned_stopping(tmp_path, data, tiny_llama_dir, "part", STOPPING)
    loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    for run in runs:  # every run loses its result and its last checkpoint
        (run.directory / "metrics.json").unlink()
        last = max(int(p.name) for p in (run.directory / "checkpoints").iterdir())
        shutil.rmtree(run.directory / "checkpoints" / str(last))
    resumed = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    _assert_close(resumed, full)
    assert [r["stopped_step"] for r in resumed] == [r["stopped_step"] for r in full]


def test_epochs_budget_in_both_loops_and_groups_split_by_budget(tmp_path, data, tiny_llama_dir):  # noqa: F811
    settings = [(0, 2e-3, 2, "pretrained"), (1, 2e-3, 2, "random"), (2, 2e-3, 5, "pretrained")]

    def planned(name):
        runs = _planned(tmp_path, data, tiny_llama_dir, name, settings, steps=40)
        for run in runs:
            run.config.train.epochs, run.config.train.min_steps = 2.0, 3
            run.config.train.evals_per_epoch = 1
        return runs

    runs = planned("group")
    keys = [program.group_key(run) for run in runs]
    assert keys[0] == keys[1] != keys[2]  # 2-shot and 5-shot runs have other budgets
    windows = len(runs[0].train_indices)
    want = budget.resolved_num_steps(runs[0].config.train, windows)
    grouped = loop.train_group(runs[:2], backbones=core.BackboneCache(), progress=False)
    alone = _sequential(planned("seq")[:2])
    _assert_close(grouped, alone)
    assert [r["num_steps"] for r in grouped + alone] == [want] * 4
    every = budget.resolved_eval_every(runs[0].config.train, windows)
    assert grouped[0]["val_curve"]["steps"][0] == every


def test_group_equals_sequential_with_lora_learning_rate(tmp_path, data, tiny_llama_dir):  # noqa: F811
    settings = [(0, 2e-3, 5, "pretrained"), (1, 5e-3, 5, "random")]

    def planned(name, lora_rate):
        runs = _planned(tmp_path, data, tiny_llama_dir, name, settings, steps=8)
        for run in runs:
            run.config.optim.lora_learning_rate = lora_rate
        return runs

    runs = planned("group", 2e-2)
    assert program.group_key(runs[0]) != program.group_key(planned("other", 1e-2)[0])
    grouped = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    _assert_close(grouped, _sequential(planned("seq", 2e-2)))


def test_new_fields_off_keep_fingerprints(tmp_path, data, tiny_llama_dir):  # noqa: F811
    from harjax.run import fingerprint

    config = _config(tiny_llama_dir)
    off = fingerprint.fingerprint(config, data, data.split.train)
    for section, name in (("train", "patience"), ("optim", "lora_learning_rate")):
        assert name not in off["config"][section]  # off: as recorded before the field existed
    config.train.patience = 3
    assert (
        fingerprint.fingerprint(config, data, data.split.train)["config"]["train"]["patience"] == 3
    )


def test_early_stopping_patience_min_steps_ties_and_best():
    stopping = budget.EarlyStopping.create(3, patience=[2, 2, 0], min_steps=[0, 40, 0])
    np.testing.assert_array_equal(stopping.update(10, [0.5, 0.5, 0.5]), [True, True, True])
    np.testing.assert_array_equal(stopping.update(20, [0.5, 0.4, 0.1]), [False] * 3)  # a tie
    np.testing.assert_array_equal(stopping.evals_since_improvement, [1, 1, 1])
    stopping.update(30, [0.4, 0.4, 0.2])
    np.testing.assert_array_equal(stopping.stopped, [True, False, False])  # 1: before min_steps
    improved = stopping.update(40, [0.9, 0.3, 0.2])  # a stopped model's score is ignored
    np.testing.assert_array_equal(improved, [False, False, False])
    np.testing.assert_array_equal(stopping.stopped, [True, True, False])  # 2: patience 0
    np.testing.assert_array_equal(stopping.best_score, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(stopping.best_step, [10, 10, 10])
    assert stopping.update(50, [1.0, 1.0, 0.6]).tolist() == [False, False, True]
    assert stopping.best_step.tolist() == [10, 10, 50] and not stopping.all_stopped
