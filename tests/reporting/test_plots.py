"""Plots are written (PNG of a plausible size) and average seeds correctly."""

import numpy as np
import pytest

from harjax.reporting import plots
from harjax.reporting.metrics import steps_to_fraction
from harjax.reporting.plots import (
    plot_confusion,
    plot_convergence,
    plot_shots,
    plot_trainable_params,
)
from tests.reporting.test_tables import _rows


def _is_png_of_size(path, min_bytes):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_plots_are_written(tmp_path):
    rows = _rows()
    plot_shots(rows, tmp_path / "shots.png")
    plot_trainable_params(rows, tmp_path / "params.png")
    transfer_rows = [
        {"source": "a", "target": "b", "init": init, "shots": k, "seed": 0, "macro_f1": 0.5}
        for init in ("sources", "none")
        for k in (0, 1, "all")
        if not (k == 0 and init == "none")
    ]
    plot_shots(transfer_rows, tmp_path / "transfer.png", series="init", panels=("source", "target"))
    assert _is_png_of_size(tmp_path / "transfer.png", 15_000)
    names = ["walk", "run", "sit", "stand"]
    confusion = np.array([[10, 2, 0, 0], [1, 12, 0, 0], [0, 0, 8, 3], [0, 0, 0, 0]])
    plot_confusion(confusion, names, tmp_path / "plots" / "confusion.png", "pretrained, k=all")
    for name in ("shots.png", "params.png", "plots/confusion.png"):
        assert _is_png_of_size(tmp_path / name, 15_000), name
    with pytest.raises(ValueError, match=r"expected a \(3, 3\) matrix"):
        plot_confusion(confusion, names[:3], tmp_path / "x.png")


def test_convergence_plot_and_seed_mean(tmp_path):
    rng = np.random.default_rng(0)
    curves = []
    for variant in ("pretrained", "random"):
        for shots in (1, 5, "all"):
            for seed in range(3):
                steps = list(range(0, 101, 10))
                values = list(np.clip(np.linspace(0.1, 0.8, 11) + rng.normal(0, 0.02, 11), 0, 1))
                curves.append(dict(variant=variant, shots=shots, seed=seed, steps=steps,
                                   val_macro_f1=values))  # fmt: skip
    curves.append(dict(variant="classical", shots=1, seed=0, steps=[], val_macro_f1=[]))
    plot_convergence(curves, tmp_path / "convergence.png")
    assert _is_png_of_size(tmp_path / "convergence.png", 20_000)

    # Seeds evaluated at different steps are averaged only where all of them have points.
    grid, mean, std = plots._mean_curve(
        [
            {"steps": [0, 10, 20], "val_macro_f1": [0.0, 1.0, 1.0]},
            {"steps": [5, 15], "val_macro_f1": [0.0, 0.5]},
        ]
    )
    np.testing.assert_allclose(grid, [5, 10, 15])
    np.testing.assert_allclose(mean, [0.25, 0.625, 0.75])
    np.testing.assert_allclose(std, [0.25, 0.375, 0.25])
    with pytest.raises(ValueError, match="no curve has any point"):
        plot_convergence(curves[-1:], tmp_path / "empty.png")
    assert (
        steps_to_fraction(curves[0]["steps"], curves[0]["val_macro_f1"], 0.95) in curves[0]["steps"]
    )


def test_difference_plot_is_written(tmp_path):
    from tests.reporting.test_stats import _rows as paired_rows

    rows = [
        *paired_rows(),
        {"variant": "scratch", "shots": 1, "split_seed": 0, "seed": 0, "macro_f1": 0.1},
    ]
    plots.plot_differences(
        rows, tmp_path / "differences.png", reference="random", others=["pretrained", "scratch"]
    )
    assert _is_png_of_size(tmp_path / "differences.png", 15_000)


def test_depth_panels_share_the_depth_range(tmp_path, monkeypatch):
    # k = all ran only at 30 layers: its panel must still span 1-30 like k = 10's, not
    # autoscale around its one depth (which pushed the side-by-side points off the tick).
    from harjax.reporting.stats import confidence_interval

    saved = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: saved.append(figure))
    level = confidence_interval([0.7, 0.8])
    scores = {
        (10, 1, "pretrained"): level,
        (10, 30, "pretrained"): level,
        (10, 30, "random"): level,
        ("all", 30, "pretrained"): level,
        ("all", 30, "random"): level,
    }
    plots.plot_depth(scores, tmp_path / "depth.png")
    ten, everything = saved[0].axes
    assert ten.get_xlim() == everything.get_xlim()
    low, high = everything.get_xlim()
    assert low < 1 < 30 < high
