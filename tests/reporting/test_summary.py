"""The cross-dataset summary: the best control is named on validation, differences are paired."""

import pytest

from harjax.reporting import stats, summary


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


def _nested_rows():
    """3 validation draws x 3 seeds: pretrained's lead over `none` is +0.06 on draw 0, +0.00 on
    draw 1 and +0.03 on draw 2, nearly the same for every seed of a draw (correlated)."""
    rows = []
    lead = {0: 0.06, 1: 0.0, 2: 0.03}
    for split in range(3):
        for seed in range(3):
            for variant, val in (("pretrained", 0.7), ("none", 0.8), ("classical", 0.9)):
                test = 0.7 + (lead[split] + 0.001 * seed if variant == "pretrained" else 0.0)
                rows.append(
                    {
                        "variant": variant,
                        "shots": 1,
                        "split_seed": split,
                        "seed": seed,
                        "val_macro_f1": val,
                        "macro_f1": test if variant != "classical" else 0.9,
                        "steps_to_95": None if variant == "classical" else 10 + 10 * (seed > 0),
                        "first_eval_step": None if variant == "classical" else 10,
                    }
                )
    return rows


def test_seeds_are_nested_in_their_draw_and_holm_runs_over_the_dataset():
    found = {c.role: c for c in summary.compare("toy", _nested_rows())}
    control = found["best control"]
    # 9 pairs in 3 draws: the interval is over the 3 draw means (0.061, 0.001, 0.031), so the
    # naive resolution over "9 pairs" (about 0.012 to 0.050) is not claimed.
    naive = stats.confidence_interval(
        [0.06 + d + 0.001 * s for d in (0.0, -0.06, -0.03) for s in range(3)]
    )
    assert stats.direction(naive) == 1
    assert (control.interval.n, control.interval.runs) == (3, 9)
    assert control.interval.mean == pytest.approx(0.031)
    assert control.verdict == "no detectable difference"
    assert control.corrected.family == 2 and control.corrected.mdd > 0.05
    assert found["classical"].holm_verdict == "pretrained worse"
    table = summary.summary_table(list(found.values()))
    assert "| 3 splits (9 pairs) | no detectable difference |" in table


def test_the_convergence_floor_is_counted_and_marked_where_it_binds():
    found = summary.compare("toy", _nested_rows(), metric="steps_to_95")
    assert [c.rival for c in found] == ["none"]  # classical trains no steps
    # Seed 0 of each draw reaches 95 % at the first evaluation (step 10): 3 of 9 runs.
    assert found[0].at_floor == pytest.approx((1 / 3, 1 / 3))
    assert found[0].floor_binds
    assert "33%/33% **floor**" in summary.summary_table(found)
    late = [{**r, "steps_to_95": 20} if r["steps_to_95"] else r for r in _nested_rows()]
    assert not summary.compare("toy", late, metric="steps_to_95")[0].floor_binds
    unknown = [{**r, "first_eval_step": None} for r in _nested_rows()]
    assert summary.compare("toy", unknown, metric="steps_to_95")[0].at_floor == (None, None)
