"""The linear probe: end to end on a tiny LLaMA and a synthetic CSV dataset, C chosen on
validation only, variants that differ in the backbone alone, and the command line's errors."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from configs.probe import get_config as probe_config
from harjax.reporting.tables import read_csv
from harjax.run.validate import ConfigError
from harjax.sweeps import probe
from tests.helpers import tiny_config
from tests.transfer_data import write_dataset

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("walk", "sit", "stand")


def _config(tmp_path, tiny_llama_dir):
    c = tiny_config("pretrained")
    c.probe = probe_config().probe
    c.probe.c_grid = (0.1, 1.0)
    c.probe.max_iter = 200
    c.probe.batch_size = 16
    c.backbone.spec = str(tiny_llama_dir)
    c.backbone.num_layers = 0  # all (2)
    c.data.data_dir = str(tmp_path / "tfds")
    c.data.window_stride = 32
    c.dataset = write_dataset(tmp_path / "csv", CLASSES, [f"s{i}" for i in range(5)], seconds=4.0)
    return c


@pytest.fixture(scope="module")
def probed(tmp_path_factory, tiny_llama_dir):
    tmp_path = tmp_path_factory.mktemp("probe")
    config = _config(tmp_path, tiny_llama_dir)
    rows = probe.run_probe(config, tmp_path / "work")
    return config, rows, tmp_path / "work"


def test_one_row_per_variant_and_layer_and_files(probed):
    config, rows, workdir = probed
    expected = [(v, layer) for v in ("pretrained", "random", "shuffled") for layer in (0, 1)]
    assert [(r["variant"], r["layer"]) for r in rows] == [*expected, ("projection-only", None)]
    assert all(r["C"] in config.probe.c_grid for r in rows)
    assert all(r["num_features"] == 16 for r in rows)  # tiny LLaMA hidden size
    assert all(0 <= r["test_macro_f1"] <= 1 and 0 <= r["val_macro_f1"] <= 1 for r in rows)
    written = read_csv(workdir / "probe.csv")
    assert list(written[0]) == list(probe.COLUMNS)
    identity = lambda found: [(r["variant"], r["layer"]) for r in found]
    assert identity(written) == identity(rows)
    text = (workdir / "probe.md").read_text()
    assert "| variant | layer |" in text
    for variant in ("pretrained", "random", "shuffled"):
        assert f"- {variant}: best layer by validation is " in text
    assert "- projection-only (the projection's tokens pooled, no backbone)" in text
    assert (workdir / "probe.png").read_bytes()[:4] == b"\x89PNG"


def test_variants_share_the_projection_and_differ_in_features(tmp_path, tiny_llama_dir):
    from harjax.data.bundle import load_data
    from harjax.data.normalization import compute_stats
    from harjax.weights import load_backbone

    config = _config(tmp_path, tiny_llama_dir)
    bundle = load_data(config)
    backbone = load_backbone(config.backbone.spec)
    models = probe._models(config, bundle, backbone)
    projections = [params["projection"] for _, params in models.values()]
    for other in projections[1:]:
        jax.tree.map(np.testing.assert_array_equal, projections[0], other)
    stats = compute_stats(bundle.dataset, bundle.split.train)
    features = probe.extract_features(config, bundle, bundle.split.val, stats, models)
    assert len(features.labels) == len(bundle.split.val)
    pretrained = features.layers["pretrained"]
    assert len(pretrained) == 2 and pretrained[0].shape == (len(bundle.split.val), 16)
    for control in ("random", "shuffled"):
        for layer in range(2):
            assert not np.allclose(features.layers[control][layer], pretrained[layer])
    assert not np.allclose(features.layers["projection-only"][0], pretrained[0])
    # The readout is the HAR model's: the last layer with the final norm is its usual output.
    model, params = models["pretrained"]
    signal = stats.apply(bundle.dataset.read_signals(bundle.split.val[:3]))
    usual = model.clone(readout_layers=()).apply({"params": params}, signal, return_features=True)
    np.testing.assert_allclose(pretrained[-1][:3], usual, rtol=1e-5, atol=1e-6)


def _two_predictions():
    """Noisy training data and points where the C=0.01 and C=100 probes disagree."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    train_x = rng.normal(0, 1, (60, 8)) + 0.8 * np.eye(3, 8)[labels]
    points = rng.normal(0, 1.5, (200, 8))
    scaled = StandardScaler().fit(train_x)
    predict = lambda c: (
        LogisticRegression(C=c, max_iter=500)
        .fit(scaled.transform(train_x), labels)
        .predict(scaled.transform(points))
    )
    return (train_x, labels), points, predict(0.01), predict(100.0)


def test_c_is_chosen_on_validation_never_test():
    train, points, weak, strong = _two_predictions()
    assert (weak != strong).any()
    # Validation agrees with the strongly regularised probe, test with the weakly regularised.
    result = probe.fit_probe(
        train, (points, weak), (points, strong), CLASSES, c_grid=(100.0, 0.01), max_iter=500
    )
    assert result["C"] == 0.01 and result["val_macro_f1"] == 1.0
    assert result["test_macro_f1"] < 1.0
    swapped = probe.fit_probe(
        train, (points, strong), (points, weak), CLASSES, c_grid=(0.01, 100.0), max_iter=500
    )
    assert swapped["C"] == 100.0 and swapped["val_macro_f1"] == 1.0
    assert swapped["test_macro_f1"] < 1.0


def test_best_layer_is_chosen_by_validation():
    rows = [
        {"variant": "pretrained", "layer": 0, "val_macro_f1": 0.5, "test_macro_f1": 0.9},
        {"variant": "pretrained", "layer": 1, "val_macro_f1": 0.7, "test_macro_f1": 0.1},
        {"variant": "pretrained", "layer": 2, "val_macro_f1": 0.7, "test_macro_f1": 0.2},
    ]
    assert probe.best_layers(rows)["pretrained"]["layer"] == 1


def test_bad_probe_config_is_one_clear_error():
    c = probe_config()
    c.probe.c_grid = ()
    c.probe.variants = ("pretrained", "none")
    with pytest.raises(ConfigError, match="c_grid") as error:
        probe.check_config(c)
    assert "config.probe.variants" in str(error.value)
    with pytest.raises(ConfigError, match="no 'probe' section"):
        probe.check_config(tiny_config())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config.probe.max_iter", "0"], "config.probe.max_iter must be an integer >= 1"),
        (["--dataset", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
        (["stray"], "unexpected arguments"),
    ],
)
def test_launch_bad_flag_exits_2_with_one_line(tmp_path, flags, message, harjax_env):
    result = subprocess.run(
        [sys.executable, str(ROOT / "launch" / "probe.py"), "--workdir", str(tmp_path), *flags],
        cwd=ROOT,
        env=harjax_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    # One error (a config error lists one line per bad field beneath it), no traceback.
    assert result.stderr.count("error:") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "probe.csv").exists()
