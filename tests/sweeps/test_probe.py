"""The linear probe: end to end on a tiny LLaMA and a synthetic CSV dataset over two seeds, C
chosen on validation only, variants that differ in the backbone alone, seeds that differ in the
projection and the controls, reports computed from the rows, and the command line's errors."""

import math
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from configs.probe import get_config as probe_config
from harjax.reporting.tables import read_csv
from harjax.run.validate import ConfigError
from harjax.sweeps import probe, probe_report
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
    config.seed = 5
    config.probe.seeds = 2
    rows = probe.run_probe(config, tmp_path / "work")
    return config, rows, tmp_path / "work"


def test_one_row_per_variant_layer_and_seed_and_files(probed):
    config, rows, workdir = probed
    expected = [
        (v, layer, seed)
        for seed in (5, 6)
        for v in ("pretrained", "random", "shuffled", "projection-only")
        for layer in ((None,) if v == "projection-only" else (0, 1))
    ]
    assert [(r["variant"], r["layer"], r["seed"]) for r in rows] == expected
    assert all(r["C"] in config.probe.c_grid for r in rows)
    assert all(r["num_features"] == 16 for r in rows)  # tiny LLaMA hidden size
    assert all(0 <= r["test_macro_f1"] <= 1 and 0 <= r["val_macro_f1"] <= 1 for r in rows)
    written = read_csv(workdir / "probe.csv")
    assert list(written[0]) == list(probe.COLUMNS)
    identity = lambda found: [(r["variant"], r["layer"], r["seed"]) for r in found]
    assert identity(written) == identity(rows)
    text = (workdir / "probe.md").read_text()
    assert "2 seeds (5, 6)" in text and "depth 2" in text and "compute dtype" in text
    assert "\nMachine: " in text and "\nCode: " in text  # what made the table
    assert "| layer | pretrained | random | shuffled |" in text
    assert (
        "| layer | control | pretrained − control [95 % CI] | n | unpaired | verdict (uncorrected) "
        "| Holm p | after Holm | MDD (80 %) |" in text
    )
    for variant in ("pretrained", "random", "shuffled", "projection-only"):
        assert f"- {variant}: test macro-F1 at its validation-chosen layer, mean over seeds" in text
    assert "Floor, projection-only" in text
    assert (workdir / "probe.png").read_bytes()[:4] == b"\x89PNG"


def test_a_seeds_rows_do_not_depend_on_the_other_seeds(probed):
    """seeds=1 is the old single-seed probe: seed `config.seed` alone, with a fresh compile
    cache, gives the same rows as inside the two-seed run."""
    from harjax.data.bundle import load_data
    from harjax.data.normalization import compute_stats
    from harjax.weights import load_backbone

    config, rows, _ = probed
    config = config.copy_and_resolve_references()
    config.probe.seeds = 1
    assert probe.seeds_of(config) == (5,)
    bundle = load_data(config)
    stats_ = compute_stats(bundle.dataset, bundle.split.train)
    alone = probe.probe_rows(
        config, bundle, stats_, load_backbone(config.backbone.spec), 5, forwards={}
    )
    assert alone == [r for r in rows if r["seed"] == 5]


def test_variants_share_the_projection_and_differ_in_features(tmp_path, tiny_llama_dir):
    from harjax.data.bundle import load_data
    from harjax.data.normalization import compute_stats
    from harjax.weights import load_backbone

    config = _config(tmp_path, tiny_llama_dir)
    bundle = load_data(config)
    backbone = load_backbone(config.backbone.spec)
    models = dict(probe.iter_models(config, bundle, backbone, seed=0))
    projections = [params["projection"] for _, params in models.values()]
    for other in projections[1:]:
        jax.tree.map(np.testing.assert_array_equal, projections[0], other)
    # Another seed draws another projection and other controls; the pretrained weights stay.
    seed_one = dict(probe.iter_models(config, bundle, backbone, seed=1))
    differs = lambda a, b: any(
        not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )
    assert differs(seed_one["pretrained"][1]["projection"], projections[0])
    for control in ("random", "shuffled"):
        assert differs(seed_one[control][1]["backbone"], models[control][1]["backbone"])
    jax.tree.map(
        np.testing.assert_array_equal,
        seed_one["pretrained"][1]["backbone"],
        models["pretrained"][1]["backbone"],
    )
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


def test_best_layer_is_chosen_by_validation_per_seed():
    rows = [
        {"variant": "pretrained", "layer": 0, "seed": 0, "val_macro_f1": 0.5, "test_macro_f1": 0.9},
        {"variant": "pretrained", "layer": 1, "seed": 0, "val_macro_f1": 0.7, "test_macro_f1": 0.1},
        {"variant": "pretrained", "layer": 2, "seed": 0, "val_macro_f1": 0.7, "test_macro_f1": 0.2},
        {"variant": "pretrained", "layer": 0, "seed": 1, "val_macro_f1": 0.8, "test_macro_f1": 0.1},
        {"variant": "pretrained", "layer": 1, "seed": 1, "val_macro_f1": 0.6, "test_macro_f1": 0.9},
    ]
    best = probe_report.best_layers(rows)
    assert best[("pretrained", 0)]["layer"] == 1 and best[("pretrained", 1)]["layer"] == 0


def _synthetic_rows():
    """Three seeds, two layers: pretrained above random at layer 0 on every seed by 0.10 +-
    0.01, at layer 1 above on one seed and below on the others."""
    test = {
        ("pretrained", 0): [0.80, 0.70, 0.75],
        ("random", 0): [0.70, 0.59, 0.66],
        ("pretrained", 1): [0.60, 0.65, 0.70],
        ("random", 1): [0.70, 0.55, 0.72],
        ("projection-only", None): [0.50, 0.52, 0.54],
    }
    return [
        {
            "variant": variant,
            "layer": layer,
            "seed": seed,
            "C": 1.0,
            "val_macro_f1": 0.5 + (0.1 if layer == seed % 2 else 0.0),
            "test_accuracy": score,
            "test_macro_f1": score,
            "num_features": 4,
        }
        for (variant, layer), scores in test.items()
        for seed, score in enumerate(scores)
    ]


def test_report_intervals_and_paired_differences_come_from_the_rows():
    rows = _synthetic_rows()
    half = lambda values: 4.302652729911275 * np.std(values, ddof=1) / math.sqrt(3)  # t_{2,.975}
    mean0 = probe_report.layer_intervals(rows)[("pretrained", 0)]
    assert mean0.n == 3 and mean0.mean == pytest.approx(0.75)
    assert mean0.high - mean0.mean == pytest.approx(half([0.80, 0.70, 0.75]))
    paired = probe_report.paired_by_layer(rows, "random")
    assert paired[0][0].differences == pytest.approx([0.10, 0.11, 0.09])
    assert paired[0][0].pairs == [(0,), (1,), (2,)]
    assert paired[1][0].differences == pytest.approx([-0.10, 0.10, -0.02])
    low, high = 0.10 - half([0.10, 0.11, 0.09]), 0.10 + half([0.10, 0.11, 0.09])
    assert (paired[0][1].low, paired[0][1].high) == pytest.approx((low, high))
    text = probe_report.markdown(rows, ["header line"])
    assert f"| 0 | 0.750 [{0.75 - half([0.8, 0.7, 0.75]):.3f}, " in text
    found = f"| 0 | random | +0.100 [{low:.3f}, {high:.3f}] | 3 seeds | 0 | pretrained higher | "
    assert found in text
    assert "| 1 | random | -0.007 [" in text
    assert "| 3 seeds | 0 | no detectable difference |" in text
    assert "Floor, projection-only (the projection's tokens pooled, no backbone): 0.520 [" in text
    # Best layer per seed by validation (layer == seed % 2 has the higher validation score).
    assert "| pretrained | 1 | 1 | 1 | 0.600 | 0.650 |" in text
    assert "| projection-only | 0 | — | 1 | 0.500 | 0.500 |" in text


def test_one_seed_reports_no_interval_and_claims_nothing():
    rows = [row for row in _synthetic_rows() if row["seed"] == 0]
    text = probe_report.markdown(rows)
    assert (
        "| 0 | random | +0.100 | 1 seed | 0 | cannot tell (one seed) | — | cannot tell (one seed) "
        "| — |" in text
    )
    assert "| 0 | 0.800 | 0.700 |" in text


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


def test_resumes_finished_seeds_and_refuses_another_probe(tmp_path, tiny_llama_dir, monkeypatch):
    from harjax.run.fingerprint import StaleRunError

    calls = []

    def fake_rows(config, bundle, stats, backbone, seed, forwards):
        calls.append(seed)
        return [
            {**row, "seed": seed, "test_macro_f1": row["test_macro_f1"] + seed / 100}
            for row in _synthetic_rows()
            if row["seed"] == 0
        ]

    monkeypatch.setattr(probe, "probe_rows", fake_rows)
    config = _config(tmp_path, tiny_llama_dir)
    workdir = tmp_path / "work"
    probe.run_probe(config, workdir)
    config.probe.seeds = 3
    rows = probe.run_probe(config, workdir)  # more seeds: seed 0 is kept, 1 and 2 run
    assert calls == [0, 1, 2]
    assert [r["seed"] for r in read_csv(workdir / "probe.csv")] == [r["seed"] for r in rows]
    assert sorted({r["seed"] for r in rows}) == [0, 1, 2]
    text = (workdir / "probe.md").read_text()  # the kept seed and the new ones, paired
    assert "3 seeds (0, 1, 2)" in text
    assert "| 0 | random | +0.100 [0.100, 0.100] | 3 seeds | 0 | pretrained higher | " in text
    probe.run_probe(config, workdir)
    assert calls == [0, 1, 2]  # nothing left to run
    config.probe.c_grid = (0.5,)
    with pytest.raises(StaleRunError, match="probe.c_grid"):
        probe.run_probe(config, workdir)
    probe.run_probe(config, workdir, overwrite=True)
    assert calls == [0, 1, 2, 0, 1, 2]


def test_rebuild_rewrites_probe_md_from_probe_csv_keeping_its_header(tmp_path):
    from harjax.reporting.tables import write_csv

    rows = _synthetic_rows()
    write_csv(rows, tmp_path / "probe.csv", probe.COLUMNS)
    (tmp_path / "probe.md").write_text(
        probe_report.markdown(rows, ["Dataset 'x', 3 seeds.", "", "Machine: m", "Code: c"])
        .replace("Holm p", "old column")  # a page written by older reporting code
    )
    text = probe_report.rebuild(tmp_path)
    assert text == (tmp_path / "probe.md").read_text()
    assert "Holm p" in text and "old column" not in text
    assert text.startswith("# Linear probe on frozen features\n\nDataset 'x', 3 seeds.\n\n")
    assert "Machine: m\nCode: c\nTables rebuilt from probe.csv by code " in text
    assert probe_report.rebuild(tmp_path).count("Tables rebuilt") == 1  # not stacked
