"""The `rocket` baseline: MultiRocket (sktime, the `baselines` extra) + ridge, fitted once per
run, its regularisation chosen on validation, a row in the tables; a clear error without the
extra. (The first MultiRocket call in a fresh environment compiles numba code, ~1 min; numba
caches it for every later process.)"""

import csv
import json
import sys

import numpy as np
import pytest

from harjax import variants
from harjax.reporting import summary
from harjax.sweeps import fewshot, protocol
from harjax.variants.rocket import RocketBaseline
from tests.helpers import tiny_config
from tests.transfer_data import SHARED, write_dataset


def _synthetic(rng, per_class, length=64):
    """Three classes of noisy sines of 1, 3 and 6 cycles per window, 3 channels."""
    t = np.arange(length) / length
    signals, labels = [], []
    for label, cycles in enumerate((1, 3, 6)):
        phase = rng.uniform(0, 2 * np.pi, (per_class, 1, 1))
        wave = np.sin(2 * np.pi * cycles * t[None, :, None] + phase)
        signals.append(wave + 0.3 * rng.normal(size=(per_class, length, 3)))
        labels += [label] * per_class
    return np.concatenate(signals).astype(np.float32), np.asarray(labels)


def test_rocket_learns_a_separable_problem_and_is_deterministic():
    rng = np.random.default_rng(0)
    train_x, train_y = _synthetic(rng, 8)
    test_x, test_y = _synthetic(rng, 20)
    model = RocketBaseline(num_kernels=84, ridge_alpha=1.0, seed=0).fit(train_x, train_y)
    predictions = model.predict(test_x)
    assert (predictions == test_y).mean() > 0.9
    # 84 kernels x (raw, differenced) x their dilations' features, each with a fitted bias.
    assert model.num_parameters() > 3 * 84
    again = RocketBaseline(num_kernels=84, ridge_alpha=1.0, seed=0).fit(train_x, train_y)
    np.testing.assert_array_equal(again._features(test_x), model._features(test_x))
    np.testing.assert_array_equal(again.predict(test_x), predictions)
    other = RocketBaseline(num_kernels=84, ridge_alpha=1.0, seed=1).fit(train_x, train_y)
    assert not np.array_equal(other._features(test_x), model._features(test_x))


def test_rocket_keeps_the_label_space_and_checks_its_inputs():
    rng = np.random.default_rng(1)
    signals, labels = _synthetic(rng, 4)
    common = np.array([4, 9, 11])[labels]
    model = RocketBaseline(num_kernels=84)
    with pytest.raises(RuntimeError, match="call fit"):
        model.predict(signals)
    model.fit(signals, common)
    assert list(model.classes_) == [4, 9, 11] and set(model.predict(signals)) <= {4, 9, 11}
    with pytest.raises(ValueError, match="expected labels"):
        RocketBaseline(num_kernels=84).fit(signals, common[:-1])
    with pytest.raises(ValueError, match=r"expected signals \(N, T, C\)"):
        RocketBaseline(num_kernels=84).fit(signals[0], common[:1])
    with pytest.raises(ValueError, match="ridge_alpha"):
        RocketBaseline(ridge_alpha=0.0)


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sktime.transformations.rocket", None)  # import fails
    signals, labels = _synthetic(np.random.default_rng(2), 2)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[baselines\]'"):
        RocketBaseline(num_kernels=84).fit(signals, labels)


@pytest.fixture(scope="module")
def data_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("rocket_data")
    config = tiny_config("rocket")
    config.dataset = write_dataset(root / "d", SHARED, [f"s{i}" for i in range(6)], seconds=4.0)
    config.data.window_stride = 32
    config.data.val_fraction = 0.34
    config.data.test_fraction = 0.34
    config.rocket.num_kernels = 84
    config.classical.num_trees = 4
    config.sweep.update(shots="2", seeds=2, splits=1, variants="classical,rocket")
    return config


def test_rocket_sweep_chooses_its_alpha_on_validation_and_has_rows(tmp_path, data_config):
    config = data_config.copy_and_resolve_references()
    # An alpha that shrinks every weight to nothing first: ties go to the first setting, so
    # only validation can pick the second.
    config.sweep.rocket_alphas = "1e12,1"
    rows = fewshot.run_sweep(config, tmp_path, progress=False)
    rocket = [r for r in rows if r["variant"] == "rocket"]
    assert len(rocket) == 2 * 2 * 2  # 2 alphas x 2 seeds x k = 2, all
    assert all(r["val_macro_f1"] is not None and r["learning_rate"] is None for r in rocket)
    kept = protocol.kept(rows)
    assert {r["ridge_alpha"] for r in kept if r["variant"] == "rocket"} == {1.0}
    for shots in (2, "all"):
        of_k = [r for r in rocket if r["shots"] == shots]
        by_alpha = {
            alpha: np.mean([r["val_macro_f1"] for r in of_k if r["ridge_alpha"] == alpha])
            for alpha in (1e12, 1.0)
        }
        assert by_alpha[1.0] > by_alpha[1e12]
    result = json.loads((tmp_path / "runs/rocket/alpha1/k2_seed0/metrics.json").read_text())
    assert result["num_steps"] == 0 and result["val_curve"] == {"steps": [], "macro_f1": []}
    assert result["compute_dtype"]["name"] == "float64" and result["backbone"]["spec"] == "none"
    assert result["tags"]["ridge_alpha"] == 1.0 and result["trainable_params"] > 0
    with open(tmp_path / "results.csv") as file:
        header = next(csv.reader(file))
    assert header[-1] == "ridge_alpha" and len(fewshot.read_results(tmp_path / "results.csv")) == 12
    markdown = (tmp_path / "results.md").read_text()
    assert "| 2 | rocket | 2 |" in markdown and "| all | rocket | 2 |" in markdown
    assert "alpha 1e+12" in markdown and "alpha 1 " in markdown  # the settings tried
    # The summary compares the method with every baseline of the table, rocket included.
    method = [
        {**r, "variant": "pretrained", "macro_f1": 0.5} for r in kept if r["variant"] == "rocket"
    ]
    rivals = {(c.shots, c.rival, c.role) for c in summary.compare("d", kept + method)}
    assert {(2, "rocket", "rocket"), ("all", "classical", "classical")} <= rivals


def test_a_sweep_without_rocket_keeps_its_results_columns(tmp_path, data_config):
    """results.csv of a sweep that did not run rocket has the columns it had before rocket."""
    config = data_config.copy_and_resolve_references()
    config.sweep.update(variants="classical", seeds=1)
    fewshot.run_sweep(config, tmp_path, progress=False)
    with open(tmp_path / "results.csv") as file:
        header = next(csv.reader(file))
    assert header == [
        *fewshot.COLUMNS,
        *fewshot.PROTOCOL_COLUMNS,
        "best_step",
        "num_train_windows",
        "first_eval_step",
    ]
    assert (tmp_path / "runs" / "classical" / "k2_seed0").is_dir()  # no setting part: one value
    assert variants.get("classical").setting.slug.format(100) == "trees100"


def test_rocket_settings_are_no_part_of_other_variants_fingerprints(data_config):
    """`Variant.section`: runs recorded before `rocket` existed still match their fingerprint."""
    from harjax.data.bundle import load_data
    from harjax.run.fingerprint import fingerprint

    data = load_data(data_config)
    prints = {}
    for variant in ("classical", "rocket"):
        for alpha in (1.0, 2.0):
            config = data_config.copy_and_resolve_references()
            config.model.variant, config.rocket.ridge_alpha = variant, alpha
            prints[variant, alpha] = fingerprint(config, data, data.split.train)
    assert "rocket" not in prints["classical", 1.0]["config"]
    assert prints["classical", 1.0] == prints["classical", 2.0]
    assert prints["rocket", 1.0] != prints["rocket", 2.0]


def test_a_sweep_without_the_extra_stops_before_anything_trains(tmp_path, data_config, monkeypatch):
    import importlib.util

    from harjax.run.validate import ConfigError
    from harjax.variants import rocket

    real = importlib.util.find_spec
    monkeypatch.setattr(
        rocket.importlib.util, "find_spec", lambda name: None if name == "sktime" else real(name)
    )
    config = data_config.copy_and_resolve_references()
    needs = r"'rocket' needs sktime, .* extra: pip install -e '\.\[baselines\]'"
    with pytest.raises(ConfigError, match=needs):
        fewshot.run_sweep(config, tmp_path, progress=False)
    assert not (tmp_path / "runs").exists()  # not even classical, planned first, trained
