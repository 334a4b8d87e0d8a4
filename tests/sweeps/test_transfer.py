"""Cross-dataset transfer: label space, pre-train -> k-shot rows for both inits, zero-shot,
leave-one-dataset-out, resume, stale-run refusal, backbone hash, and CLI errors (datasets:
`tests/transfer_data.py`)."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harjax.data import sampling
from harjax.data.labels import COMMON_LABELS
from harjax.run import loop
from harjax.run.checkpoint import BackboneMismatchError
from harjax.sweeps import core, transfer
from harjax.sweeps import folds as fold_plans
from harjax.tree import flatten_params
from tests.transfer_data import SHARED, make_config, sweep_of, write_all


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("transfer_data"))


# ------------------------------------------------------------------------------ pure functions


def test_parse_shots_and_plan_folds():
    assert transfer.parse_shots("5,0,1,all,1") == [0, 1, 5, "all"]
    with pytest.raises(ValueError, match="not a non-negative integer"):
        transfer.parse_shots("1,-2")
    assert fold_plans.plan_folds(["x", "y"], "z") == [fold_plans.Fold(("x", "y"), "z")]
    folds = fold_plans.plan_folds(leave_one_out=["x", "y", "z"])
    assert [(f.sources, f.target) for f in folds] == [
        (("y", "z"), "x"),
        (("x", "z"), "y"),
        (("x", "y"), "z"),
    ]
    assert len({f.name for f in folds}) == 3
    with pytest.raises(ValueError, match="also listed in --source"):
        fold_plans.plan_folds(["x", "z"], "z")
    with pytest.raises(ValueError, match="do not combine"):
        fold_plans.plan_folds(["x"], "", ["x", "y"])
    with pytest.raises(ValueError, match=">= 2 distinct"):
        fold_plans.plan_folds(leave_one_out=["x"])
    with pytest.raises(ValueError, match="--target"):
        fold_plans.plan_folds(["x"], "")
    with pytest.raises(ValueError, match="listed twice"):
        fold_plans.parse_names("x,y,x", "source")
    assert transfer.fold_runs(folds[0], [0, 2], 2) == [
        ("sources", 0, 0),
        ("sources", 2, 0),
        ("sources", 2, 1),
        ("none", 2, 0),
        ("none", 2, 1),
    ]


def test_variants_without_a_transferable_tree_are_refused(data):
    config = make_config(data["data_dir"], variant="random")
    with pytest.raises(ValueError, match="draws its frozen weights from the run seed"):
        fold_plans.check_config(config)
    config = make_config(data["data_dir"])
    config.data.label_key = "label"
    with pytest.raises(ValueError, match="common label space"):
        fold_plans.check_config(config)


# -------------------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def bundles(data):
    config = make_config(data["data_dir"])
    return fold_plans.load_bundles(config, [data["a"], data["b"], data["c"], data["no_shared"]])


def test_fold_label_space_is_shared_common_labels_and_drops_are_counted(bundles, data):
    fold = fold_plans.Fold((data["a"], data["b"]), data["c"])
    prepared = fold_plans.prepare_fold(fold, bundles)
    assert prepared.classes == SHARED  # lie (a only) and run (c only) are out, fidget has none
    info = prepared.info
    assert info["source_common_labels"] == [*SHARED, "lie"]
    assert info["target_common_labels"] == [*SHARED, "run"]
    b = bundles[data["b"]].dataset
    fidget = b.class_names.index("fidget")
    assert info["dropped_no_common_label"][data["b"]] == int((b.labels == fidget).sum()) > 0
    a, c = bundles[data["a"]], bundles[data["c"]]
    lie = a.dataset.class_names.index("lie")
    run = c.dataset.class_names.index("run")
    in_split = lambda bundle: np.concatenate(
        [bundle.split.train, bundle.split.val, bundle.split.test]
    )
    assert info["dropped_outside_shared_labels"] == {
        "source": int((a.dataset.labels[in_split(a)] == lie).sum()),
        "target": int((c.dataset.labels[in_split(c)] == run).sum()),
    }
    for bundle in (prepared.source, prepared.target):
        assert bundle.class_names == SHARED
        for indices in (bundle.split.train, bundle.split.val, bundle.split.test):
            labels = bundle.dataset.labels[indices]
            assert len(indices) and (labels >= 0).all()
            # the restricted label is the window's common label, renumbered
            common = bundle.dataset.common_labels[indices]
            assert [SHARED[i] for i in labels] == [COMMON_LABELS[i] for i in common]
    # source splits keep each dataset's own subjects, prefixed, disjoint across parts
    assert set(prepared.source.split.train_subjects).isdisjoint(prepared.source.split.test_subjects)
    assert any(s.startswith(data["b"] + "/") for s in prepared.source.split.train_subjects)
    with pytest.raises(ValueError, match="at least 2 shared common labels"):
        fold_plans.prepare_fold(fold_plans.Fold((data["a"],), data["no_shared"]), bundles)


def test_k_larger_than_a_class_has_fails_before_training(bundles, data):
    prepared = fold_plans.prepare_fold(fold_plans.Fold((data["a"],), data["c"]), bundles)
    with pytest.raises(ValueError, match="fewer than k=1000"):
        sampling.check_shots(prepared.target, [0, 1000], 1)


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sweep(data, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("transfer_run")
    config = make_config(data["data_dir"])
    sweep_of(config, source=[data["a"], data["b"]], target=data["c"], shots="0,2", seeds=2)
    folds = list(transfer.transfer_axes(config).folds)
    rows = transfer.run_transfer(config, workdir, progress=False)
    return {"workdir": workdir, "rows": rows, "config": config, "folds": folds}


def test_pretraining_then_k_shot_rows_for_both_inits(sweep, data):
    rows, workdir = sweep["rows"], sweep["workdir"]
    keys = [(r["init"], r["shots"], r["seed"]) for r in rows]
    assert sorted(keys) == sorted(
        [("sources", 0, 0)] + [(i, 2, s) for i in ("sources", "none") for s in (0, 1)]
    )
    for row in rows:
        assert row["source"] == f"{data['a']},{data['b']}" and row["target"] == data["c"]
        assert row["classes"] == "walk;sit;stand"
        assert row["num_train_windows"] == 3 * row["shots"]  # exactly k per shared class
    header = (workdir / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == list(transfer.COLUMNS)
    assert len((workdir / "results.csv").read_text().splitlines()) == 1 + len(rows)
    markdown = (workdir / "results.md").read_text()
    assert "| 0 | sources | 1 |" in markdown and "Gain of pre-training" in markdown
    assert "All 5 runs complete." in markdown and "Machine: " in markdown
    assert (workdir / "transfer.png").stat().st_size > 0
    fold_dir = workdir / "folds" / sweep["folds"][0].name
    pretrain = json.loads((fold_dir / "pretrain" / "metrics.json").read_text())
    assert pretrain["class_names"] == list(SHARED) and pretrain["tags"]["stage"] == "pretrain"
    # pre-training is tested on held-out subjects of both sources
    tested = pretrain["split"]["test_subjects"]
    assert {t.rsplit("/", 1)[0] for t in tested} == {data["a"], data["b"]}
    for init, k, seed in keys:
        run = json.loads(
            (
                transfer.run_dir(workdir, sweep["folds"][0], init, k, seed) / "metrics.json"
            ).read_text()
        )
        if init == "sources":
            # started from the pre-trained tree, normalised as in pre-training
            assert run["init_from"] == str(fold_dir / "pretrain")
            assert run["stats"] == pretrain["stats"]
        else:
            assert run["init_from"] is None and run["stats"] != pretrain["stats"]
    # same k-shot windows for both inits at one (k, seed): same fine-tuning data
    runs = lambda init: json.loads(
        (transfer.run_dir(workdir, sweep["folds"][0], init, 2, 1) / "metrics.json").read_text()
    )
    assert runs("sources")["num_train_windows"] == runs("none")["num_train_windows"] == 6


def test_zero_shot_row_evaluates_the_pretrained_model_without_training(sweep):
    zero = [r for r in sweep["rows"] if r["shots"] == 0]
    assert len(zero) == 1 and zero[0]["init"] == "sources"
    directory = transfer.run_dir(sweep["workdir"], sweep["folds"][0], "sources", 0, 0)
    result = json.loads((directory / "metrics.json").read_text())
    assert result["num_steps"] == 0 and result["val_curve"]["steps"] == []
    # walk/sit/stand look alike in every dataset: the source model transfers well above chance
    assert zero[0]["macro_f1"] > 0.6, zero


def test_rerun_skips_finished_runs(sweep):
    workdir = sweep["workdir"]
    results = sorted(workdir.glob("folds/*/**/metrics.json"))
    stamps = {p: p.stat().st_mtime_ns for p in results}
    again = transfer.run_transfer(sweep["config"], workdir, progress=False)
    assert again == sweep["rows"]
    assert {p: p.stat().st_mtime_ns for p in results} == stamps


def test_init_with_another_backbone_hash_is_refused(sweep, tmp_path, bundles, data):
    prepared = fold_plans.prepare_fold(fold_plans.Fold((data["a"], data["b"]), data["c"]), bundles)
    fold_dir = sweep["workdir"] / "folds" / sweep["folds"][0].name
    init = transfer.load_pretrained(sweep["config"], fold_dir / "pretrain", prepared, None)
    wrong = dataclasses.replace(init, backbone_hash="another")
    with pytest.raises(BackboneMismatchError, match="another"):
        loop.train_and_evaluate(
            sweep["config"],
            tmp_path / "run",
            data=prepared.target,
            init_trainable=wrong,
            progress=False,
        )


def test_rerun_with_another_config_and_overwrite_pretrains_again(data, tmp_path):
    """--overwrite discards the stale pre-training; finished `sources` runs must not try to
    start from the tree that was discarded."""
    config = make_config(data["data_dir"])
    sweep_of(config, source=[data["a"]], target=data["c"])
    folds = list(transfer.transfer_axes(config).folds)
    first = transfer.run_transfer(config, tmp_path, progress=False)
    config.optim.learning_rate = 5e-3
    with pytest.raises(ValueError, match="another configuration"):
        transfer.run_transfer(config, tmp_path, progress=False)
    again = transfer.run_transfer(config, tmp_path, progress=False, overwrite=True)
    assert len(again) == len(first) == 1
    pretrain = tmp_path / "folds" / folds[0].name / "pretrain"
    assert (
        json.loads((pretrain / "fingerprint.json").read_text())["config"]["optim"]["learning_rate"]
        == 5e-3
    )


def test_leave_one_dataset_out_gives_one_fold_per_dataset(data, tmp_path):
    names = [data["a"], data["b"], data["c"]]
    config = make_config(data["data_dir"])
    rows = transfer.run_transfer(sweep_of(config, leave_one_out=names), tmp_path, progress=False)
    assert sorted(r["target"] for r in rows) == sorted(names)
    for row in rows:
        assert row["init"] == "sources" and row["shots"] == 0
        assert set(row["source"].split(",")) == set(names) - {row["target"]}
    assert len(list(tmp_path.glob("folds/*/pretrain/metrics.json"))) == 3


def test_pretrained_backbone_lora_tree_and_hash_carry_into_the_target_run(
    data, tmp_path, tiny_llama_dir
):
    config = make_config(data["data_dir"], variant="pretrained")
    config.backbone.spec = str(tiny_llama_dir)
    config.backbone.num_layers = 1
    config.pretrain.num_steps = 4
    config.pretrain.eval_every = 2
    sweep_of(config, source=[data["a"]], target=data["c"])
    folds = list(transfer.transfer_axes(config).folds)
    rows = transfer.run_transfer(config, tmp_path, progress=False)
    assert [(r["init"], r["shots"], r["variant"]) for r in rows] == [("sources", 0, "pretrained")]
    results = [json.loads(p.read_text()) for p in tmp_path.glob("folds/*/**/metrics.json")]
    hashes = {result["backbone"]["hash"] for result in results}
    assert len(results) == 2 and len(hashes) == 1 and "none" not in hashes
    backbone = core.BackboneCache().get(config)
    assert hashes == {backbone.content_hash}
    bundles = fold_plans.load_bundles(config, [data["a"], data["c"]])
    prepared = fold_plans.prepare_fold(folds[0], bundles)
    init = transfer.load_pretrained(
        config, tmp_path / "folds" / folds[0].name / "pretrain", prepared, backbone
    )
    lora_b = {p: v for p, v in flatten_params(init.params).items() if p.endswith("lora/b")}
    assert lora_b and any(np.abs(v).max() > 0 for v in lora_b.values())  # trained (b starts at 0)


# ----------------------------------------------------------------------------------------- CLI


def _cli(args, env, cwd):
    return subprocess.run(
        [sys.executable, "launch/transfer.py", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown", "nope"),
        ("target_in_sources", "also listed in --source"),
        ("no_shared", "at least 2 shared common labels"),
    ],
)
def test_cli_bad_input_is_one_clear_error(case, message, data, tmp_path, harjax_env):
    from harjax.cli import REPO_ROOT

    args = {
        "unknown": ["--source", "nope", "--target", data["c"]],
        "target_in_sources": ["--source", f"{data['a']},{data['c']}", "--target", data["c"]],
        "no_shared": ["--source", data["a"], "--target", data["no_shared"]],
    }[case]
    common = [
        f"--workdir={tmp_path / 'w'}",
        f"--config.data.data_dir={data['data_dir']}",
        "--config.data.window_length=32",
        "--config.data.window_stride=32",
    ]
    done = _cli([*args, *common], harjax_env, REPO_ROOT)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def _config_file(tmp_path, data_dir, variant="none"):
    """The fixture's config as a config file, so the CLI runs exactly the same runs."""
    path = tmp_path / "tiny_transfer.py"
    path.write_text(
        "from tests.transfer_data import make_config\n\n\n"
        f"def get_config(arg=None):\n    return make_config({data_dir!r}, {variant!r})\n"
    )
    return path


def test_cli_rerun_of_a_finished_sweep_trains_nothing_and_prints_the_table(
    sweep, data, harjax_env, tmp_path
):
    from harjax.cli import REPO_ROOT

    workdir = sweep["workdir"]
    stamps = {p: p.stat().st_mtime_ns for p in workdir.glob("folds/*/**/metrics.json")}
    config_file = _config_file(tmp_path, data["data_dir"])
    args = ["--source", f"{data['a']},{data['b']}", "--target", data["c"], "--shots", "0,2",
            f"--workdir={workdir}", f"--config={config_file}"]  # fmt: skip
    done = _cli([*args, "--seeds", "2"], harjax_env, REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "# Cross-dataset transfer" in done.stdout and "All 5 runs complete." in done.stdout
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == len(sweep["rows"]) and all(" done [" in p for p in progress)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # The same command with another config refuses, naming what differs and the ways out.
    done = _cli([*args, "--seeds", "2", "--config.train.num_steps=30"], harjax_env, REPO_ROOT)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "config.train.num_steps: 12 -> 30" in done.stderr and "--overwrite" in done.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((workdir / "config.json").read_text())["train"]["num_steps"] == 12


def test_gain_of_pretraining_has_its_interval_holm_and_detectable_difference():
    rows = [
        {
            "source": "a",
            "target": "c",
            "shots": k,
            "init": init,
            "seed": seed,
            "accuracy": 0.5,
            "macro_f1": 0.5 + (gain + 0.01 * seed if init == "sources" else 0.0),
            "source_test_macro_f1": 0.9,
        }
        for k, gain in ((1, 0.10), (5, 0.0))
        for init in ("sources", "none")
        for seed in range(3)
    ]
    text = transfer.summary_markdown(rows, [], len(rows))
    # k = 1: gains 0.10, 0.11, 0.12 over 3 seeds (one split): t interval 0.110 ± 0.025;
    # k = 5: 0.00, 0.01, 0.02 (p 0.23), so Holm multiplies k = 1's p by 2.
    low, high = scipy_stats.t.interval(0.95, 2, loc=0.11, scale=0.01 / 3**0.5)
    p = scipy_stats.ttest_1samp([0.10, 0.11, 0.12], 0.0).pvalue
    assert (
        f"| a | c | 1 | 3 seeds | +0.110 | {low:+.3f} to {high:+.3f} | better | {2 * p:.3f} | "
        "better |" in text
    )
    assert "| a | c | 5 | 3 seeds | +0.010 |" in text and "conditional on that test set" in text
