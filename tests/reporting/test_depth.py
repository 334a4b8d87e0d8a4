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
    # 2 validation draws x 2 seeds: the seeds are averaged per draw, so 2 units of 2 pairs.
    assert (found[(10, 30, "random")].n, found[(10, 30, "random")].runs) == (2, 4)
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
    assert found[(10, 3, "none")].runs == 4
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
    assert found[("all", 30, "none")].runs == 4
    assert "| all | 3 |" not in depth.markdown(rows, free)


def test_verdicts_after_holm_per_k_mdd_and_partial_rows(tmp_path):
    rows = _rows() + [{**r, "shots": "all"} for r in _rows() if r["num_layers"] == 30]
    # k = all: random ran only split 0 so far (2 of 4 pairs).
    rows = [
        r
        for r in rows
        if not (r["shots"] == "all" and r["variant"] == "random" and r["split_seed"] == 1)
    ]
    paired = depth.differences(rows)
    holm = depth.corrected(paired)
    assert {holm[key].family for key in holm if key[0] == 10} == {4}  # one family per k
    # k = all: random's 2 seeds share split 0, so its interval is over seeds on that draw.
    assert {holm[key].family for key in holm if key[0] == "all"} == {2}
    assert paired[("all", 30, "random")].units == "2 seeds"
    # At k = 10, 30 layers, pretrained - random: p = 0.028 uncorrected, x 4 after Holm.
    fixed = holm[(10, 30, "random")]
    assert fixed.uncorrected == 1 and fixed.corrected == 0
    text = depth.markdown(rows, partial={("all", 30)})
    assert "| 10 | 30 | random | +0.115 [+0.051, +0.179] | 2 splits (4 pairs) | pretrained " \
        "better | 0.111 | no detectable difference |" in text
    # The k = all rows say they are partial, and a cell of fewer pairs than its row says so.
    assert "| all (partial) | 30 | 4 |" in text and "(2 pairs)" in text
    assert "| all (partial) | 30 | random |" in text
    depth.write(tmp_path, rows, partial={("all", 30)})
    assert (tmp_path / "depth.png").stat().st_size > 0
