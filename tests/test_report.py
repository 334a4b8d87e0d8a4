import csv

import numpy as np
import pytest

from harjax import report
from harjax.report import (
    append_results_csv,
    plot_confusion,
    plot_convergence,
    plot_shots,
    plot_trainable_params,
    read_results_csv,
    summary_table,
    winners,
    write_results_csv,
)


def _row(variant, shots, seed, macro_f1, accuracy, params, seconds, steps=None, **extra):
    return {
        "variant": variant,
        "shots": shots,
        "seed": seed,
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "trainable_params": params,
        "train_seconds": seconds,
        "steps_to_95": steps,
        **extra,
    }


def _rows():
    """A hand-made sweep whose means and sample stds are easy to check by hand."""
    return [
        _row("classical", 1, 0, 0.55, 0.60, 50, 1.0),
        _row("classical", 1, 1, 0.55, 0.60, 60, 1.0),
        _row("classical", 1, 2, 0.58, 0.63, 70, 1.0),
        _row("pretrained", 1, 0, 0.5, 0.6, 1000, 10.0, 100),
        _row("pretrained", 1, 1, 0.6, 0.7, 1000, 20.0, 200),
        _row("pretrained", 1, 2, 0.7, 0.8, 1000, 30.0, 300),
        _row("random", 1, 0, 0.3, 0.4, 1000, 12.0, 150),
        _row("pretrained", "all", 0, 0.90, 0.91, 1000, 40.0, 500),
        _row("pretrained", "all", 1, 0.92, 0.93, 1000, 44.0, None),
        _row("classical", "all", 0, 0.80, 0.85, 5000, 2.0),
        _row("classical", "all", 1, 0.84, 0.87, 7000, 4.0),
        _row("mine", "all", 0, 0.5, 0.5, 12, 1.0, 10),
        _row("classical", 10, 0, 0.7, 0.75, 400, 1.5),
    ]


def test_csv_round_trips_types_and_keeps_column_order(tmp_path):
    path = tmp_path / "out" / "results.csv"
    rows = [
        _row("pretrained", 5, 0, 0.1 + 0.2, 1 / 3, 123_456, 12.5, 40, lora_rank=4, note="a,b"),
        _row("classical", "all", 2, 0.5, 0.75, 9, 0.25, None, flag=True, lr=1e-3),
    ]
    write_results_csv(rows, path)
    with open(path, newline="") as file:
        header = next(csv.reader(file))
    assert header == [
        *report.REQUIRED_COLUMNS,
        "steps_to_95",
        "lora_rank",
        "note",
        "flag",
        "lr",
    ]
    back = read_results_csv(path)
    expected = [
        {**rows[0], "flag": None, "lr": None},
        {**rows[1], "lora_rank": None, "note": None},
    ]
    assert back == expected
    assert back[0]["accuracy"] == 1 / 3 and back[0]["macro_f1"] == 0.1 + 0.2  # exact floats
    assert isinstance(back[0]["shots"], int) and back[1]["shots"] == "all"
    assert isinstance(back[0]["trainable_params"], int) and isinstance(back[0]["seed"], int)
    assert back[1]["flag"] is True


def test_append_creates_then_widens_and_never_leaves_temp_files(tmp_path):
    path = tmp_path / "results.csv"
    first = _row("pretrained", 1, 0, 0.5, 0.6, 10, 1.0, 7)
    append_results_csv(first, path)
    second = _row("random", 1, 0, 0.4, 0.5, 10, 1.0, 9, extra_metric=0.125)
    append_results_csv([second], path)
    assert read_results_csv(path) == [{**first, "extra_metric": None}, second]
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_bad_rows_and_files_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"row 0: missing columns \['train_seconds'\]"):
        row = _row("pretrained", 1, 0, 0.5, 0.6, 10, 1.0)
        del row["train_seconds"]
        write_results_csv([row], tmp_path / "a.csv")
    with pytest.raises(ValueError, match="expected shots a positive int or 'all', found '5'"):
        write_results_csv([_row("pretrained", "5", 0, 0.5, 0.6, 10, 1.0)], tmp_path / "a.csv")
    path = tmp_path / "bad.csv"
    write_results_csv([_row("pretrained", 1, 0, 0.5, 0.6, 10, 1.0)], path)
    path.write_text(path.read_text().replace("0.5,", "half,"))
    with pytest.raises(ValueError, match=r"bad.csv:2, column 'macro_f1': expected float"):
        read_results_csv(path)
    path.write_text("variant,shots\n")
    with pytest.raises(ValueError, match="header lacks"):
        read_results_csv(path)


def test_summary_table_exact():
    table = summary_table(_rows())
    assert table == (
        "| k | variant | seeds | accuracy | macro-F1 | trainable params | train s "
        "| steps to 95 % |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
        "| 1 | pretrained | 3 | 0.700 ± 0.100 | 0.600 ± 0.100 | 1,000 | 20.0 | 200 |\n"
        "| 1 | random | 1 | 0.400 | 0.300 | 1,000 | 12.0 | 150 |\n"
        "| 1 | classical | 3 | 0.610 ± 0.017 | 0.560 ± 0.017 | 60 | 1.0 | – |\n"
        "| 10 | classical | 1 | 0.750 | 0.700 | 400 | 1.5 | – |\n"
        "| all | pretrained | 2 | 0.920 ± 0.014 | 0.910 ± 0.014 | 1,000 | 42.0 | 500 (1/2) |\n"
        "| all | classical | 2 | 0.860 ± 0.014 | 0.820 ± 0.028 | 6,000 | 3.0 | – |\n"
        "| all | mine | 1 | 0.500 | 0.500 | 12 | 1.0 | 10 |\n"
    )
    # A given order wins; variants it does not name still appear, after it.
    reordered = summary_table(_rows(), variant_order=["classical", "pretrained"])
    lines = reordered.splitlines()[2:]
    assert [line.split(" | ")[1] for line in lines] == [
        "classical",
        "pretrained",
        "random",
        "classical",
        "classical",
        "pretrained",
        "mine",
    ]


def test_a_run_counted_twice_is_an_error():
    rows = _rows() + [_row("pretrained", 1, 2, 0.7, 0.8, 1000, 30.0, 300)]
    with pytest.raises(ValueError, match=r"rows 5 and 13: the same run"):
        summary_table(rows)


def test_winners_sentences():
    assert winners(_rows()) == (
        "At k=1 pretrained beats classical by 0.040 macro-F1 (0.600 vs 0.560 mean macro-F1 over "
        "3 and 3 seeds; within one seed std, 0.100).\n"
        "At k=10 only classical was run (macro-F1 0.700, 1 seed).\n"
        "At k=all pretrained beats classical by 0.090 macro-F1 (0.910 vs 0.820 mean macro-F1 "
        "over 2 and 2 seeds; more than one seed std, 0.028).\n"
    )
    tie = [
        _row("pretrained", 5, 0, 0.8, 0.8, 1, 1.0),
        _row("classical", 5, 0, 0.8, 0.8, 1, 1.0),
        _row("scratch", 7, 0, 0.6, 0.8, 1, 1.0),
        _row("classical", 7, 0, 0.7, 0.8, 1, 1.0),
    ]
    assert winners(tie) == (
        "At k=5 pretrained and classical tie (0.800 vs 0.800 mean macro-F1 over 1 and 1 seeds).\n"
        "At k=7 classical beats scratch by 0.100 macro-F1 (0.700 vs 0.600 mean macro-F1 over "
        "1 and 1 seeds; seed spread unknown: a single seed).\n"
    )


def _is_png_of_size(path, min_bytes):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_plots_are_written(tmp_path):
    rows = _rows()
    plot_shots(rows, tmp_path / "shots.png")
    plot_trainable_params(rows, tmp_path / "params.png")
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
    grid, mean, std = report._mean_curve(
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
    assert report.convergence_steps(curves[0]) in curves[0]["steps"]
