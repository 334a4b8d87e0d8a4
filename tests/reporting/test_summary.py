"""The cross-dataset summary: the best control is named on validation, differences are paired."""

import pytest

from harjax.reporting import summary


def _rows():
    rows = []
    # (variant, val, test offsets): 'none' has the better validation, 'random' the better test.
    scores = {
        "pretrained": (0.70, 0.70),
        "random": (0.60, 0.90),
        "none": (0.80, 0.65),
        "cnn": (0.75, 0.60),
        "classical": (0.90, 0.95),
    }
    for variant, (val, test) in scores.items():
        for seed in range(3):
            wobble = 0.01 * seed if variant == "pretrained" else 0.0
            rows.append(
                {
                    "variant": variant,
                    "shots": 5,
                    "split_seed": 0,
                    "seed": seed,
                    "val_macro_f1": val,
                    "macro_f1": test + wobble,
                }
            )
    return rows


def test_best_control_is_chosen_on_validation_and_differences_are_paired():
    found = {c.role: c for c in summary.compare("toy", _rows())}
    assert found["best control"].rival == "none"  # not 'random', the better one on test
    assert found["best control"].interval.mean == pytest.approx(0.06)
    assert found["best control"].interval.n == 3
    assert found["best control"].verdict == "pretrained better"
    assert found["classical"].verdict == "pretrained worse"
    table = summary.summary_table(list(found.values()))
    assert "| toy | 5 | none (best control) | +0.060 |" in table


def test_no_pretrained_rows_no_comparisons_and_single_pairs_cannot_tell():
    rows = [r for r in _rows() if r["variant"] != "pretrained"]
    assert summary.compare("toy", rows) == []
    one = [r for r in _rows() if r["seed"] == 0]
    assert {c.verdict for c in summary.compare("toy", one)} == {"cannot tell (fewer than 2 pairs)"}


def test_the_summary_figure_is_written(tmp_path):
    from harjax.reporting import plots

    comparisons = summary.compare("toy", _rows()) + summary.compare("other", _rows())
    plots.plot_summary(comparisons, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 1000


def test_scores_table_is_variants_by_k_in_the_usual_order():
    rows = _rows() + [{**r, "shots": "all"} for r in _rows() if r["variant"] != "cnn"]
    table = summary.scores_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| variant | k = 5 (3 runs) | k = all (3 runs) |"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| pretrained",
        "| random",
        "| none",
        "| cnn",
        "| classical",
    ]
    assert "| cnn | 0.600 ± 0.000 | — |" in table


def test_convergence_compares_steps_and_fewer_steps_is_faster():
    rows = [
        {**r, "steps_to_95": {"pretrained": 20, "none": 30, "random": 25}.get(r["variant"])}
        for r in _rows()
    ]
    rows[0]["steps_to_95"] = None  # a run that never validated: left unpaired
    found = {c.role: c for c in summary.compare("toy", rows, metric="steps_to_95")}
    assert "classical" not in found  # no steps
    assert found["best control"].rival == "none"  # still chosen on validation macro-F1
    assert found["best control"].interval.n == 2
    assert found["best control"].verdict == "pretrained faster"
    assert "| toy | 5 | none (best control) | -10.0 |" in summary.summary_table(
        [found["best control"]]
    )
