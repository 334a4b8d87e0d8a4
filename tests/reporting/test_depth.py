"""The depth report: scores and paired differences stay within one depth, references are
depth-free, and the table says only what the intervals allow."""

import pytest

from harjax.reporting import depth


def _rows():
    rows = []
    # pretrained gains over its controls only at depth 30; random is the same as pretrained at 3.
    test = {
        (3, "pretrained"): 0.70,
        (3, "random"): 0.70,
        (3, "shuffled"): 0.69,
        (30, "pretrained"): 0.80,
        (30, "random"): 0.70,
        (30, "shuffled"): 0.71,
    }
    for (layers, variant), score in test.items():
        for split_seed in range(2):
            for seed in range(2):
                wobble = 0.01 * (split_seed + 2 * seed) if variant == "pretrained" else 0.0
                rows.append(
                    {
                        "variant": variant,
                        "shots": 10,
                        "num_layers": layers,
                        "split_seed": split_seed,
                        "seed": seed,
                        "macro_f1": score + wobble,
                    }
                )
    return rows


def test_differences_are_paired_within_a_depth():
    found = depth.differences(_rows())
    assert set(found) == {(10, d, c) for d in (3, 30) for c in ("random", "shuffled")}
    assert found[(10, 30, "random")].mean == pytest.approx(0.115)
    assert found[(10, 30, "random")].n == 4
    assert depth.verdict(found[(10, 30, "random")]) == "pretrained better"
    assert depth.verdict(found[(10, 3, "random")]) == "no detectable difference"
    assert depth.scores(_rows())[(10, 3, "shuffled")].mean == pytest.approx(0.69)


def test_markdown_and_plot_with_depth_free_references(tmp_path):
    reference_rows = [
        {"variant": v, "shots": 10, "split_seed": s, "seed": t, "macro_f1": 0.75 + 0.01 * t}
        for v in ("none", "classical", "random")
        for s in range(2)
        for t in range(2)
    ]
    free = [r for r in reference_rows if r["variant"] in ("none", "classical")]
    assert set(depth.references(free)) == {(10, "none"), (10, "classical")}
    depth.write(tmp_path, _rows(), free, header_lines=["toy", ""])
    text = (tmp_path / "depth.md").read_text()
    assert "| 10 | 30 | 4 | 0.815 [" in text  # pretrained's mean at 30 layers over 4 pairs
    assert "| 10 | 30 | random | +0.115 [" in text and "pretrained better" in text
    assert "| 10 | none | 4 | 0.755 [" in text
    # The depth-free runs pair with pretrained at every depth: 0.815 - 0.755 at 30 layers.
    found = depth.differences(_rows(), free)
    assert found[(10, 30, "none")].mean == pytest.approx(0.06)
    assert found[(10, 3, "none")].n == 4
    assert "| 10 | 30 | none | +0.060 [" in text
    assert (tmp_path / "depth.png").stat().st_size > 0


def test_a_single_pair_cannot_tell():
    one = [r for r in _rows() if r["seed"] == 0 and r["split_seed"] == 0]
    assert {depth.verdict(i) for i in depth.differences(one).values()} == {
        "cannot tell (fewer than 2 pairs)"
    }
    assert "(n=1)" in depth.markdown(one)


def test_a_control_not_in_the_sweep_gets_no_row_and_a_missing_pretrained_is_not_run():
    rows = [r for r in _rows() if r["variant"] != "shuffled"]
    assert {control for _, _, control in depth.differences(rows)} == {"random"}
    no_pretrained_at_30 = [
        r for r in _rows() if not (r["variant"] == "pretrained" and r["num_layers"] == 30)
    ]
    assert depth.verdict(depth.differences(no_pretrained_at_30)[(10, 30, "random")]) == "not run"


def test_references_pair_only_at_the_depths_each_k_ran():
    # k = 10 ran at 3 and 30 layers, k = all only at 30 (the depth study's design): the
    # depth-free references must not invent "not run" rows for k = all at 3 layers.
    rows = _rows() + [{**r, "shots": "all"} for r in _rows() if r["num_layers"] == 30]
    free = [
        {"variant": "none", "shots": shots, "split_seed": s, "seed": t, "macro_f1": 0.75}
        for shots in (10, "all")
        for s in range(2)
        for t in range(2)
    ]
    found = depth.differences(rows, free)
    assert {(k, d) for k, d, _ in found} == {(10, 3), (10, 30), ("all", 30)}
    assert found[("all", 30, "none")].n == 4
    assert "| all | 3 |" not in depth.markdown(rows, free)
