"""The group runner equals the sequential loop, bit for bit per run, and resumes like it."""

import shutil

from harjax.data import sampling
from harjax.run import loop
from harjax.sweeps import core
from tests.run.test_loop import _config, data, env  # noqa: F401  (fixtures)

COMPARED = ("val_curve", "best_step", "accuracy", "macro_f1", "best_val_macro_f1")


def _planned(tmp_path, data, tiny_llama_dir, name, settings, steps=8):  # noqa: F811
    runs = []
    for index, (seed, rate, shots, variant) in enumerate(settings):
        config = _config(tiny_llama_dir, variant=variant, steps=steps)
        config.seed = seed
        config.optim.learning_rate = rate
        runs.append(
            core.PlannedRun(
                directory=tmp_path / name / f"run{index}",
                config=config,
                data=data,
                train_indices=sampling.training_windows(data, shots, seed),
                tags={"seed": seed, "shots": shots},
                label=f"run{index}",
            )
        )
    return runs


def _sequential(runs):
    return [
        loop.train_and_evaluate(
            run.config,
            run.directory,
            data=run.data,
            train_indices=run.train_indices,
            progress=False,
            tags=run.tags,
        )
        for run in runs
    ]


def _assert_close(batched_results, sequential_results):
    """Equal to the last bit: each model of a group runs the program it would run alone."""
    for got, want in zip(batched_results, sequential_results, strict=True):
        for key in ("val_curve", "best_step", "accuracy", "macro_f1", "test"):
            assert got[key] == want[key], key
        assert got.keys() == want.keys()
        assert got["tags"] == want["tags"]


SETTINGS = [(0, 2e-3, 5, "pretrained"), (1, 5e-3, "all", "pretrained"), (2, 1e-3, 5, "random")]


def test_group_equals_sequential_loop_per_model(tmp_path, data, tiny_llama_dir):  # noqa: F811
    runs = _planned(tmp_path, data, tiny_llama_dir, "group", SETTINGS)
    backbones = core.BackboneCache()
    batched_results = loop.train_group(runs, backbones=backbones, progress=False)
    sequential = _sequential(_planned(tmp_path, data, tiny_llama_dir, "seq", SETTINGS))
    _assert_close(batched_results, sequential)
    # One model per compiled program, in a group too.
    assert [r["models_in_program"] for r in batched_results] == [1, 1, 1]
    assert [r["models_in_program"] for r in sequential] == [1, 1, 1]
    for run in runs:
        for name in (
            "metrics.json",
            "fingerprint.json",
            "config.json",
            "stats.json",
            "metrics.jsonl",
            "confusion.png",
        ):
            assert (run.directory / name).exists(), name
        assert sorted(p.name for p in (run.directory / "checkpoints").iterdir()) == ["4", "8"]
    # A group only reads finished runs back.
    again = loop.train_group(runs, backbones=backbones, progress=False)
    assert again == batched_results


def test_per_model_learning_rates_are_used(tmp_path, data, tiny_llama_dir):  # noqa: F811
    same = [(0, 1e-3, 5, "pretrained"), (0, 3e-2, 5, "pretrained")]
    first, second = loop.train_group(
        _planned(tmp_path, data, tiny_llama_dir, "lr", same),
        backbones=core.BackboneCache(),
        progress=False,
    )
    # Same seed and windows: only the learning rate differs, so the runs must.
    assert first["val_curve"] != second["val_curve"] or first["macro_f1"] != second["macro_f1"]
    sequential = _sequential(_planned(tmp_path, data, tiny_llama_dir, "lr_seq", same))
    _assert_close([first, second], sequential)


def test_killed_group_resumes_each_run_from_its_own_checkpoint(tmp_path, data, tiny_llama_dir):  # noqa: F811
    settings = SETTINGS[:2] + [(3, 2e-3, 5, "pretrained")]
    full = loop.train_group(
        _planned(tmp_path, data, tiny_llama_dir, "full", settings, steps=12),
        backbones=core.BackboneCache(),
        progress=False,
    )
    runs = _planned(tmp_path, data, tiny_llama_dir, "part", settings, steps=12)
    loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    # Run 0 finished; run 1 killed after its step-8 checkpoint; run 2 after step 4.
    (runs[1].directory / "metrics.json").unlink()
    shutil.rmtree(runs[1].directory / "checkpoints" / "12")
    (runs[2].directory / "metrics.json").unlink()
    shutil.rmtree(runs[2].directory / "checkpoints" / "12")
    shutil.rmtree(runs[2].directory / "checkpoints" / "8")
    finished = (runs[0].directory / "metrics.json").stat().st_mtime_ns
    resumed = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    assert (runs[0].directory / "metrics.json").stat().st_mtime_ns == finished
    _assert_close(resumed, full)


def test_group_checkpoints_resume_in_the_sequential_loop(tmp_path, data, tiny_llama_dir):  # noqa: F811
    settings = SETTINGS[:2]
    runs = _planned(tmp_path, data, tiny_llama_dir, "mixed", settings, steps=12)
    full = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    for run in runs:
        (run.directory / "metrics.json").unlink()
        shutil.rmtree(run.directory / "checkpoints" / "12")
    resumed = _sequential(runs)
    _assert_close(resumed, full)
    assert [r["models_in_program"] for r in resumed] == [1, 1]


def test_sweep_groups_by_program_and_models_per_program_one_is_sequential(
    tmp_path,
    data,  # noqa: F811
    tiny_llama_dir,
):
    settings = SETTINGS + [(0, 2e-3, 5, "classical")]
    runs = _planned(tmp_path, data, tiny_llama_dir, "plan", settings)
    for run in runs:
        run.config.train.models_per_program = 2
    groups = [[index for index, _ in members] for members in core.program_groups(runs)]
    assert groups == [[1, 2], [3], [4]]
    for run in runs:
        run.config.train.models_per_program = 1
    assert [len(members) for members in core.program_groups(runs)] == [1, 1, 1, 1]
    # models_per_program is not part of a run's identity: results of either mode are reused.
    assert runs[0].fingerprint()["config"]["train"].get("models_per_program") is None


def test_auto_dtype_is_resolved_and_recorded(tmp_path, data, tiny_llama_dir):  # noqa: F811
    from harjax import precision

    runs = _planned(tmp_path, data, tiny_llama_dir, "auto", SETTINGS[:2], steps=4)
    for run in runs:
        run.config.backbone.dtype = "auto"
    results = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    name, reason = precision.resolve_compute_dtype("auto")
    for result in results:
        assert result["compute_dtype"] == {"name": name, "reason": reason}
    config = _config(tiny_llama_dir, steps=4)
    result = loop.train_and_evaluate(config, tmp_path / "seq_f32", data=data, progress=False)
    assert result["compute_dtype"] == {"name": "float32", "reason": "float32 requested"}


def test_results_md_says_when_bfloat16_runs_trained_in_a_vmapped_program(
    tmp_path,
    data,  # noqa: F811
    tiny_llama_dir,
):
    import json

    runs = _planned(tmp_path, data, tiny_llama_dir, "bf16", SETTINGS[:2], steps=4)
    for run in runs:
        run.config.backbone.dtype = "bfloat16"
    results = loop.train_group(runs, backbones=core.BackboneCache(), progress=False)
    # Trained in a group now: each model had its own program, reproducible run by run.
    assert core.precision_lines(runs) == []
    # A record of the former vmapped program of two models.
    for run, result in zip(runs, results, strict=True):
        (run.directory / "metrics.json").write_text(json.dumps({**result, "models_in_program": 2}))
    lines = core.precision_lines(runs)
    assert len(lines) == 2 and lines[0].startswith("Note: 2 runs (e.g. run0) trained in bfloat16")
    assert "former vmapped program" in lines[0]


def test_records_from_before_the_program_size_was_recorded_count_as_shared(
    tmp_path,
    data,  # noqa: F811
    tiny_llama_dir,
):
    import json

    runs = _planned(tmp_path, data, tiny_llama_dir, "old", SETTINGS[:1], steps=4)
    runs[0].config.backbone.dtype = "bfloat16"
    (result,) = _sequential(runs)
    path = runs[0].directory / "metrics.json"
    old = {key: value for key, value in result.items() if key != "models_in_program"}
    path.write_text(json.dumps(old))
    runs[0].config.train.models_per_program = 8  # could have shared: say so
    assert core.precision_lines(runs)[0].startswith("Note: 1 run (e.g. run0)")
    runs[0].config.train.models_per_program = 1
    assert core.precision_lines(runs) == []
