"""The few-shot comparison protocol: run directories and tags of a splits x learning-rate grid,
settings chosen on validation only, and the paired comparisons in results.md — plus a tiny
end-to-end sweep (2 splits x 2 learning rates x 2 forest sizes) whose default slice reproduces
the default sweep's rows."""

import copy
import csv
import types

import numpy as np
import pytest

from harjax.sweeps import axes, fewshot, protocol
from tests.helpers import tiny_config
from tests.transfer_data import SHARED, write_dataset


def _bundle(size):
    # k = 'all' trains on the whole training split: plan() reads nothing else of the data.
    return types.SimpleNamespace(split=types.SimpleNamespace(train=np.arange(size)))


def test_plan_two_splits_two_learning_rates(tmp_path):
    config = tiny_config("none")
    variants = axes.make_variants(["none", "classical"])
    planned = fewshot.plan(
        config,
        tmp_path,
        {3: _bundle(5), 4: _bundle(7)},
        shots=["all"],
        seeds=2,
        variants=variants,
        learning_rates=(1e-3, 5e-3),
        classical_trees=(10,),
    )
    found = {str(run.directory.relative_to(tmp_path)): run for run in planned}
    assert sorted(found) == sorted(
        [
            f"runs/none/split{s}/lr{lr}/kall_seed{seed}"
            for s in (3, 4)
            for lr in ("0.001", "0.005")
            for seed in (0, 1)
        ]
        + [f"runs/classical/split{s}/kall_seed{seed}" for s in (3, 4) for seed in (0, 1)]
    )
    run = found["runs/none/split4/lr0.005/kall_seed1"]
    assert run.tags == {
        "variant": "none",
        "base_variant": "none",
        "shots": "all",
        "seed": 1,
        "split_seed": 4,
        "learning_rate": 0.005,
    }
    assert run.config.optim.learning_rate == 0.005 and run.config.data.split_seed == 4
    assert run.config.seed == config.seed + 1 and len(run.train_indices) == 7
    classical = found["runs/classical/split3/kall_seed0"]
    assert classical.tags["num_trees"] == 10 and "learning_rate" not in classical.tags
    assert classical.config.classical.num_trees == 10


def test_plan_default_keeps_todays_layout(tmp_path):
    config = tiny_config("none")
    planned = fewshot.plan(
        config,
        tmp_path,
        _bundle(5),
        shots=["all"],
        seeds=1,
        variants=axes.make_variants(["none", "classical"]),
    )
    assert [str(r.directory.relative_to(tmp_path)) for r in planned] == [
        "runs/none/kall_seed0",
        "runs/classical/kall_seed0",
    ]
    assert planned[0].tags["learning_rate"] == config.optim.learning_rate
    assert planned[0].tags["split_seed"] == config.data.split_seed
    assert planned[1].tags["num_trees"] == config.classical.num_trees


def _row(variant, lr, split, seed, val, test, shots=5):
    return {
        "variant": variant,
        "shots": shots,
        "seed": seed,
        "split_seed": split,
        "learning_rate": lr,
        "num_trees": None,
        "val_macro_f1": val,
        "macro_f1": test,
    }


def test_selection_follows_validation_not_test():
    rows = [
        # lr 1e-3: better on validation, worse on test; lr 5e-3 the other way round.
        *[_row("none", 1e-3, s, seed, 0.8, 0.2) for s in (0, 1) for seed in (0, 1)],
        *[_row("none", 5e-3, s, seed, 0.6, 0.9) for s in (0, 1) for seed in (0, 1)],
        # At k=10 the mean decides: one bad run of 5e-3 does not outweigh three good ones.
        _row("none", 1e-3, 0, 0, 0.5, 0.5, shots=10),
        _row("none", 1e-3, 0, 1, 0.5, 0.5, shots=10),
        _row("none", 5e-3, 0, 0, 0.3, 0.5, shots=10),
        _row("none", 5e-3, 0, 1, 0.8, 0.5, shots=10),
    ]
    chosen = protocol.select(rows)
    kept = {(r["shots"], r["learning_rate"]) for r in protocol.kept(chosen)}
    assert kept == {(5, 1e-3), (10, 5e-3)}
    assert len(protocol.kept(chosen)) == 6
    # Selection never reads the test column: scrambling it changes nothing.
    scrambled = [{**r, "macro_f1": 1 - r["macro_f1"]} for r in rows]
    assert [r["selected"] for r in protocol.select(scrambled)] == [r["selected"] for r in chosen]
    with pytest.raises(ValueError, match="no validation macro-F1"):
        protocol.select([*rows[:4], {**rows[4], "val_macro_f1": None}, *rows[5:]])
    # One setting is kept whatever its score (classical from older sweeps: no val).
    assert protocol.select([_row("classical", None, 0, 0, None, 0.5)])[0]["selected"] is True


def _compared_rows():
    rows = []
    for split in (0, 1):
        for seed in (0, 1, 2):
            noise = 0.01 * (split + 2 * seed)
            rows.append(_row("pretrained", 2e-3, split, seed, 0.7, 0.80 + noise))
            rows.append(_row("none", 2e-3, split, seed, 0.6, 0.60 + noise + 0.01 * seed))
            rows.append(_row("scratch", 2e-3, split, seed, 0.6, 0.80 + noise + 0.02 * (seed - 1)))
    return [
        {
            **r,
            "accuracy": r["macro_f1"],
            "trainable_params": 1,
            "train_seconds": 1.0,
            "steps_to_95": None,
            "selected": True,
        }
        for r in rows
    ]


def test_results_md_comparisons_and_verdicts():
    text = fewshot.verdict_text(_compared_rows())
    assert (
        "| shots | variant | macro_f1 − pretrained | 95 % CI | n | unpaired "
        "| verdict (uncorrected) | Holm p | after Holm | MDD (80 %) |" in text
    )
    # 2 splits x 3 seeds: the seeds are averaged per split, so the units are the 2 splits.
    assert "| 5 | none | -0.190 |" in text and "| 2 splits (6 pairs) | 0 | worse |" in text
    assert "- shots=5: pretrained beats none by 0.190 macro_f1 (95 % CI" in text
    assert "- shots=5: no detectable difference in macro_f1 between scratch and pretrained" in text
    assert "after Holm's correction over the 2 comparisons of its family" in text
    # Rows not kept are left out of the comparisons: one split's 3 seeds remain.
    dropped = [{**r, "selected": r["split_seed"] == 0} for r in _compared_rows()]
    assert "| 3 seeds | 0 |" in fewshot.verdict_text(dropped)
    # The summary counts runs over splits and seeds (same seed on two splits is two runs).
    assert "| 5 | pretrained | 6 |" in fewshot.summary_table(_compared_rows())


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sweep_config(tmp_path_factory, tiny_llama_dir):
    root = tmp_path_factory.mktemp("protocol_data")
    spec = write_dataset(root / "d", SHARED, [f"s{i}" for i in range(6)], seconds=4.0)
    config = tiny_config("pretrained")
    config.dataset = spec
    config.backbone.spec = str(tiny_llama_dir)
    config.backbone.num_layers = 1
    config.data.window_stride = 32
    config.data.val_fraction = 0.34
    config.data.test_fraction = 0.34
    config.train.num_steps = 4
    config.train.eval_every = 2
    config.train.checkpoint_every = 4
    config.train.max_eval_windows = 32
    config.train.eval_batch_size = 32
    config.optim.warmup_steps = 1
    config.classical.num_trees = 4
    return config


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_sweep_grid_end_to_end_and_default_slice(tmp_path, sweep_config):
    """`run_sweep` runs its config's `sweep` section; the grid's default slice is the default."""
    config = copy.deepcopy(sweep_config)
    config.sweep.update(shots="2", seeds=1, splits=1, variants="pretrained,none,classical")
    default = fewshot.run_sweep(config, tmp_path / "default", progress=False)
    assert len(default) == 6 and all(r["selected"] for r in default)
    assert sorted(
        p.relative_to(tmp_path / "default").as_posix()
        for p in (tmp_path / "default" / "runs").glob("*/*")
    ) == sorted(
        f"runs/{v}/k{k}_seed0" for v in ("pretrained", "none", "classical") for k in (2, "all")
    )
    lr = config.optim.learning_rate
    grid = tmp_path / "grid"
    config.sweep.update(splits=2, learning_rates=f"{lr},{5 * lr}", classical_trees="4,6")
    rows = fewshot.run_sweep(config, grid, progress=False)
    assert len(rows) == 2 * 2 * 2 * 3
    assert all(r["val_macro_f1"] is not None for r in rows)
    classical = [r for r in rows if r["variant"] == "classical"]
    assert len({r["val_macro_f1"] for r in classical}) > 1  # scored on validation per fit
    # Per (variant, k) one setting is kept, on every split and seed.
    kept = protocol.kept(rows)
    assert len(kept) == 3 * 2 * 2
    assert len({(r["variant"], r["shots"], protocol.setting_of(r)) for r in kept}) == 3 * 2
    # The default command's runs are the grid's split-0, default-setting runs, number for number.
    keys = ("variant", "shots", "seed", "accuracy", "macro_f1", "val_macro_f1", "trainable_params")
    same = [
        r
        for r in rows
        if r["split_seed"] == 0 and protocol.setting_of(r) in ((lr, None, None), (None, 4, None))
    ]
    assert [{k: r[k] for k in keys} for r in same] == [{k: r[k] for k in keys} for r in default]
    markdown = (grid / "results.md").read_text()
    assert "Settings tried" in markdown and "macro_f1 − pretrained" in markdown
    assert "shots=2: " in markdown and (grid / "differences.png").exists()
    written = _csv(grid / "results.csv")
    assert len(written) == 24 and {w["selected"] for w in written} == {"True", "False"}


def test_a_sweep_validates_its_grid_once_and_each_run_once(tmp_path, sweep_config, monkeypatch):
    """Once per sweep (every variant x setting, before any data loads) and once per run: the
    check used to run four times per run (sweep pre-check, Sweep.check, the run, its open)."""
    from harjax.run import validate

    calls = []
    counted = lambda original: lambda config, **kw: calls.append(1) or original(config, **kw)
    monkeypatch.setattr(validate, "problems", counted(validate.problems))
    from harjax.sweeps import core

    monkeypatch.setattr(core, "problems", counted(core.problems))
    config = copy.deepcopy(sweep_config)
    config.sweep.update(shots="2", seeds=1, splits=1, variants="classical", classical_trees="4,6")
    rows = fewshot.run_sweep(config, tmp_path, progress=False)
    assert len(rows) == 4  # 2 forest sizes x k = 2, all
    assert len(calls) == 2 + 4  # the grid's 2 settings once, then each run once


def test_a_depth_axis_is_one_sweep_per_depth_checked_before_any_trains(tmp_path, sweep_config):
    config = copy.deepcopy(sweep_config)
    config.sweep.update(shots="2", seeds=1, splits=1, variants="classical", num_layers="1,2")
    rows = fewshot.run_sweep(config, tmp_path, progress=False)
    assert [(r["num_layers"], r["shots"]) for r in rows] == [(1, 2), (1, "all"), (2, 2), (2, "all")]
    for depth in (1, 2):  # each depth its own tables: pairs never cross depths
        assert (tmp_path / f"layers{depth}" / "results.csv").exists()
        recorded = (tmp_path / f"layers{depth}" / "runs/classical/k2_seed0/config.json").read_text()
        assert f'"num_layers": {depth}' in recorded
    read_back = fewshot.depth_rows(tmp_path)
    assert [(r["num_layers"], r["shots"]) for r in read_back] == [
        (1, 2),
        (1, "all"),
        (2, 2),
        (2, "all"),
    ]
    side_by_side = (tmp_path / "depth.md").read_text()  # every depth's scores in one table
    assert "| 2 | 1 | 1 | 0." in side_by_side and "| all | 2 | 1 | 1.000 (n=1) |" in side_by_side
    assert (tmp_path / "depth.png").exists()
    with pytest.raises(FileNotFoundError, match="not a depth-axis sweep"):
        fewshot.depth_rows(tmp_path / "layers1")
    config.sweep.num_layers = "3,-1"
    with pytest.raises(ValueError, match="config.sweep.num_layers"):
        fewshot.run_sweep(config, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad" / "layers3").exists()  # nothing trained


def test_rebuild_reports_rewrites_a_sweeps_pages_from_its_run_directories(tmp_path, sweep_config):
    """The committed results pages follow the reporting code without training: rebuilding from
    the run directories alone (no data) writes the same files the sweep wrote."""
    config = copy.deepcopy(sweep_config)
    config.sweep.update(shots="2", seeds=1, splits=2, variants="none,classical")
    rows = fewshot.run_sweep(config, tmp_path, progress=False)
    written = {name: (tmp_path / name).read_text() for name in ("results.csv", "results.md")}
    neural = [r for r in rows if r["variant"] == "none"]
    assert all(r["first_eval_step"] == config.train.eval_every for r in neural)
    assert all(r["first_eval_step"] is None for r in rows if r["variant"] == "classical")
    for name in written:
        (tmp_path / name).unlink()
    planned, variants = fewshot.replan(tmp_path)
    assert [v.name for v in variants] == ["none", "classical"] and len(planned) == 8
    assert all(run.train_indices is None for run in planned)
    assert fewshot.rebuild_reports(tmp_path) == rows
    assert {name: (tmp_path / name).read_text() for name in written} == written
    # A depth axis: every layers<N>/ and depth.md.
    config.sweep.update(seeds=1, splits=1, variants="classical", num_layers="1,2")
    fewshot.run_sweep(config, tmp_path / "depth", progress=False)
    depth_page = (tmp_path / "depth" / "depth.md").read_text()
    (tmp_path / "depth" / "depth.md").unlink()
    (tmp_path / "depth" / "layers2" / "results.md").unlink()
    assert len(fewshot.rebuild_reports(tmp_path / "depth")) == 4
    assert (tmp_path / "depth" / "depth.md").read_text() == depth_page
    assert (tmp_path / "depth" / "layers2" / "results.md").exists()
    # A depth not finished (a run's record gone) is marked partial in depth.md.
    (tmp_path / "depth" / "layers2" / "runs" / "classical" / "k2_seed0" / "metrics.json").unlink()
    fewshot.rebuild_reports(tmp_path / "depth")
    depth_page = (tmp_path / "depth" / "depth.md").read_text()
    assert "| all (partial) | 2 |" in depth_page and "| all | 1 |" in depth_page
