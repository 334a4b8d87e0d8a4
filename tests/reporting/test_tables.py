"""The result-row CSV (typed, atomic, 0644), grouping and mean ± std."""

import csv
import os
import stat

import pytest

from harjax.reporting.tables import (
    completeness,
    group_rows,
    markdown_table,
    mean_std,
    read_completeness,
    read_csv,
    write_csv,
)
from harjax.sweeps.fewshot import COLUMNS


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
    write_csv(rows, path, COLUMNS)
    with open(path, newline="") as file:
        header = next(csv.reader(file))
    assert header == [*COLUMNS, "lora_rank", "note", "flag", "lr"]
    back = read_csv(path, required=COLUMNS, types={"variant": str})
    expected = [
        {**rows[0], "flag": None, "lr": None},
        {**rows[1], "lora_rank": None, "note": None},
    ]
    assert back == expected
    assert back[0]["accuracy"] == 1 / 3 and back[0]["macro_f1"] == 0.1 + 0.2  # exact floats
    assert isinstance(back[0]["shots"], int) and back[1]["shots"] == "all"
    assert isinstance(back[0]["trainable_params"], int) and isinstance(back[0]["seed"], int)
    assert back[1]["flag"] is True
    assert [p.name for p in path.parent.iterdir()] == ["results.csv"]  # no temp file left


def test_csv_gets_the_permissions_of_every_other_output(tmp_path):
    old = os.umask(0o022)
    try:
        write_csv([_row("pretrained", 1, 0, 0.5, 0.6, 10, 1.0)], tmp_path / "results.csv")
        (tmp_path / "other.md").write_text("x")
    finally:
        os.umask(old)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)
    assert mode("results.csv") == mode("other.md") == 0o644


def test_bad_files_give_clear_errors(tmp_path):
    path = tmp_path / "bad.csv"
    write_csv([_row("pretrained", 1, 0, 0.5, 0.6, 10, 1.0)], path, COLUMNS)
    path.write_text(path.read_text().replace("0.5,", "half,"))
    with pytest.raises(ValueError, match=r"bad.csv:2, column 'macro_f1': expected float"):
        read_csv(path, types={"macro_f1": float})
    path.write_text("variant,shots\n")
    with pytest.raises(ValueError, match="header lacks"):
        read_csv(path, required=COLUMNS)
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_csv(path)


def test_a_run_counted_twice_is_an_error():
    rows = [_row("pretrained", 1, 2, 0.7, 0.8, 1000, 30.0, 300)] * 2
    with pytest.raises(ValueError, match=r"rows 0 and 1: the same run"):
        group_rows(rows, ["shots", "variant"])
    with pytest.raises(ValueError, match=r"missing columns \['source'\]"):
        group_rows(rows, ["source"])


def test_mean_std_markdown_and_completeness():
    assert mean_std([0.5, 0.6, 0.7]) == pytest.approx((0.6, 0.1))
    assert mean_std([0.5])[1] != mean_std([0.5])[1]  # NaN: no spread from one run
    assert markdown_table(["a", "b"], [["x", 1]], "lr") == "| a | b |\n|---|---:|\n| x | 1 |\n"
    with pytest.raises(ValueError, match="2 columns"):
        markdown_table(["a", "b"], [], "l")
    assert completeness(12, 12) == "All 12 runs complete."
    assert "5 of 12 runs complete" in completeness(5, 12)


def test_completeness_reads_back_from_a_report(tmp_path):
    report = tmp_path / "results.md"
    for done, planned in ((5, 12), (12, 12)):
        report.write_text(f"# Few-shot results\n\n{completeness(done, planned)}\n\n| a |\n")
        assert read_completeness(report) == (done, planned)
    report.write_text("# Few-shot results\n\nno count here\n")
    with pytest.raises(ValueError, match="results.md: no 'All N runs complete'"):
        read_completeness(report)
