"""Paired comparisons: matching, t and bootstrap intervals against scipy, verdict sentences."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harjax.reporting.stats import (
    Interval,
    comparison_table,
    confidence_interval,
    correct_family,
    design_interval,
    design_note,
    holm,
    min_detectable_difference,
    nested_interval,
    p_value,
    paired_differences,
    paired_interval,
    verdict,
    verdicts,
)


def _row(variant, shots, split_seed, seed, macro_f1):
    return {
        "variant": variant,
        "shots": shots,
        "split_seed": split_seed,
        "seed": seed,
        "macro_f1": macro_f1,
    }


def _rows():
    """k=5: pretrained is 0.10 above random on each of three matched runs (+ one unmatched
    each side); k=`all`: equal on average; k=1: one pair only."""
    return [
        _row("pretrained", 5, 0, 0, 0.60),
        _row("pretrained", 5, 0, 1, 0.70),
        _row("pretrained", 5, 1, 0, 0.65),
        _row("pretrained", 5, 1, 1, 0.99),  # random never ran split 1 seed 1
        _row("random", 5, 0, 0, 0.50),
        _row("random", 5, 0, 1, 0.61),
        _row("random", 5, 1, 0, 0.54),
        _row("random", 5, 2, 0, 0.01),  # pretrained never ran split 2
        _row("pretrained", "all", 0, 0, 0.80),
        _row("pretrained", "all", 0, 1, 0.70),
        _row("random", "all", 0, 0, 0.70),
        _row("random", "all", 0, 1, 0.80),
        _row("pretrained", 1, 0, 0, 0.30),
        _row("random", 1, 0, 0, 0.20),
        _row("scratch", 5, 0, 0, 0.00),  # a third variant: never read when comparing two
    ]


def _paired(rows, a="pretrained", b="random"):
    return paired_differences(
        rows,
        metric="macro_f1",
        compare="variant",
        a=a,
        b=b,
        within=["shots"],
        pair_on=["split_seed", "seed"],
    )


def test_pairs_only_matched_runs_and_counts_the_rest():
    paired = _paired(_rows())
    assert set(paired) == {(5,), ("all",), (1,)}
    five = paired[(5,)]
    assert five.pairs == [(0, 0), (0, 1), (1, 0)]
    np.testing.assert_allclose(five.differences, [0.10, 0.09, 0.11], atol=1e-12)
    assert five.only_a == [(1, 1)] and five.only_b == [(2, 0)] and five.unpaired == 2
    assert paired[("all",)].unpaired == 0 and len(paired[(1,)].differences) == 1


def test_pairing_does_not_depend_on_row_order():
    forward, backward = _paired(_rows()), _paired(_rows()[::-1])
    assert forward == backward


def test_the_same_run_twice_and_a_missing_score_are_errors():
    with pytest.raises(ValueError, match="appears twice"):
        _paired([*_rows(), _row("random", 5, 0, 0, 0.5)])
    with pytest.raises(ValueError, match="no 'macro_f1' value"):
        _paired([*_rows(), _row("random", 5, 3, 0, None)])
    with pytest.raises(ValueError, match="no 'macro_f1' value"):
        _paired([*_rows(), _row("pretrained", 5, 3, 0, math.nan)])


@pytest.mark.parametrize("n", [2, 5, 30])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_t_interval_equals_scipy(n, level):
    differences = np.random.default_rng(n).normal(0.02, 0.05, size=n)
    interval = confidence_interval(differences, level=level, method="t")
    low, high = scipy_stats.t.interval(
        level, n - 1, loc=differences.mean(), scale=scipy_stats.sem(differences)
    )
    assert interval.n == n and interval.method == "t" and interval.level == level
    assert interval.mean == pytest.approx(differences.mean(), abs=1e-12)
    assert interval.low == pytest.approx(low, abs=1e-10)
    assert interval.high == pytest.approx(high, abs=1e-10)


def test_t_interval_excludes_zero_exactly_when_the_paired_t_test_rejects():
    # The 95 % t interval of a - b excludes 0 iff ttest_rel(a, b) has p < 0.05.
    rng = np.random.default_rng(0)
    for shift in [0.0, 0.01, 0.02, 0.05, 0.1]:
        a = rng.normal(0.5, 0.05, size=8)
        b = a - shift + rng.normal(0, 0.03, size=8)
        interval = confidence_interval(a - b)
        excludes = interval.low > 0 or interval.high < 0
        assert excludes == (scipy_stats.ttest_rel(a, b).pvalue < 0.05)


def test_bootstrap_is_close_to_t_for_normal_data_and_reproducible():
    differences = np.random.default_rng(1).normal(0.03, 0.05, size=200)
    t = confidence_interval(differences, method="t")
    boot = confidence_interval(differences, method="bootstrap", seed=7)
    half = (t.high - t.low) / 2
    assert boot.mean == t.mean
    assert abs(boot.low - t.low) < 0.1 * half and abs(boot.high - t.high) < 0.1 * half
    assert confidence_interval(differences, method="bootstrap", seed=7) == boot
    assert confidence_interval(differences, method="bootstrap", seed=8) != boot


def test_degenerate_cases():
    one = confidence_interval([0.2])
    assert one.mean == 0.2 and one.n == 1 and math.isnan(one.low) and math.isnan(one.high)
    none = confidence_interval([])
    assert none.n == 0 and math.isnan(none.mean)
    for method in ["t", "bootstrap"]:
        equal = confidence_interval([0.1, 0.1, 0.1], method=method)
        assert (equal.mean, equal.low, equal.high, equal.n) == (0.1, 0.1, 0.1, 3)
    with pytest.raises(ValueError, match="level"):
        confidence_interval([0.1, 0.2], level=95)
    with pytest.raises(ValueError, match="method"):
        confidence_interval([0.1, 0.2], method="z")


def test_verdict_sentences():
    def say(mean, low, high, n):
        return verdict("pretrained", "random", Interval(mean, low, high, n, "t", 0.95), "macro-F1")

    assert say(0.042, 0.013, 0.071, 5) == (
        "pretrained beats random by 0.042 macro-F1 (95 % CI 0.013 to 0.071, 5 pairs)."
    )
    assert say(-0.042, -0.071, -0.013, 5) == (
        "random beats pretrained by 0.042 macro-F1 (95 % CI 0.013 to 0.071, 5 pairs)."
    )
    assert say(0.01, -0.02, 0.04, 2) == (
        "no detectable difference in macro-F1 between pretrained and random "
        "(mean 0.010, 95 % CI -0.020 to 0.040, 2 pairs)."
    )
    assert say(-1e-12, -0.02, 0.02, 3) == (  # a rounding-level negative is not "-0.000"
        "no detectable difference in macro-F1 between pretrained and random "
        "(mean 0.000, 95 % CI -0.020 to 0.020, 3 pairs)."
    )
    assert say(0.1, math.nan, math.nan, 1) == (
        "cannot tell whether pretrained or random has the higher macro-F1 (only 1 pair)."
    )
    assert say(math.nan, math.nan, math.nan, 0) == (
        "cannot tell whether pretrained or random has the higher macro-F1 (only 0 pairs)."
    )


def _compare(function, **extra):
    return function(
        _rows(),
        metric="macro_f1",
        reference="random",
        others=["pretrained"],
        within=["shots"],
        pair_on=["split_seed", "seed"],
        **extra,
    )


def test_comparison_table_sorts_k_and_gives_a_word_per_line():
    table = _compare(comparison_table, nested_in=None).splitlines()
    assert table[0] == (
        "| shots | variant | macro_f1 − random | 95 % CI | n | unpaired | verdict (uncorrected) "
        "| Holm p | after Holm | MDD (80 %) |"
    )
    assert table[2] == (
        "| 1 | pretrained | +0.100 | — | 1 pair | 0 | cannot tell | — | cannot tell | — |"
    )
    # k=5: differences 0.10, 0.09, 0.11 -> t = 17.3 on 2 df, p = 0.0033; Holm over the 2
    # tests of the table (k=1 has one pair: no test) doubles it.
    assert table[3] == (
        "| 5 | pretrained | +0.100 | 0.075 to 0.125 | 3 pairs | 2 | better | 0.007 | better "
        "| 0.033 |"
    )
    assert table[4] == (
        "| all | pretrained | +0.000 | -1.271 to 1.271 | 2 pairs | 0 | no detectable difference "
        "| 1.000 | no detectable difference | 1.633 |"
    )
    assert len(table) == 5


def test_comparison_table_nests_seeds_in_their_split():
    # k=5's pairs are split 0 (seeds 0, 1: 0.10, 0.09) and split 1 (seed 0: 0.11): the split
    # means 0.095 and 0.11 are the 2 units; the uncorrected interval excludes zero, Holm's
    # does not.
    line = _compare(comparison_table).splitlines()[3]
    low, high = scipy_stats.t.interval(0.95, 1, loc=0.1025, scale=0.0075)
    assert line == (
        f"| 5 | pretrained | +0.102 | {low:.3f} to {high:.3f} | 2 splits (3 pairs) | 2 | better "
        "| 0.093 | no detectable difference | 0.123 |"
    )


def test_verdicts_name_the_group():
    sentences = _compare(verdicts)
    assert [s.split(":")[0] for s in sentences] == ["shots=1", "shots=5", "shots=all"]
    assert sentences[1] == (
        "shots=5: pretrained beats random by 0.102 macro_f1 (95 % CI 0.007 to 0.198, 2 splits "
        "(3 pairs); uncorrected); after Holm's correction over the 2 comparisons of its family: "
        "no longer resolved (adjusted p 0.093)."
    )
    assert sentences[2] == (
        "shots=all: no detectable difference in macro_f1 between pretrained and random (mean "
        "0.000, 95 % CI -1.271 to 1.271, 2 seeds; uncorrected); the smallest difference it could "
        "detect with 80 % power is 1.633."
    )


# ------------------------------------------------ design-aware intervals, Holm, detectable size


def test_nested_interval_is_the_t_interval_over_split_means():
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    clusters = [2, 0, 1, 0, 2, 1]  # split means: 0 -> 0.3, 1 -> 0.45, 2 -> 0.3
    interval = nested_interval(values, clusters)
    means = [0.3, 0.45, 0.3]
    reference = scipy_stats.ttest_1samp(means, 0.0).confidence_interval(0.95)
    assert interval.mean == pytest.approx(np.mean(means))
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))
    assert interval.sd == pytest.approx(np.std(means, ddof=1))
    assert (interval.n, interval.unit, interval.runs) == (3, "split", 6)
    assert interval.units == "3 splits (6 pairs)"
    with pytest.raises(ValueError, match="one cluster per value"):
        nested_interval(values, clusters[:-1])


def test_nested_interval_differs_from_naive_on_correlated_data_and_not_with_one_seed():
    # Three seeds share each of four validation draws: a draw effect (sd 0.05) makes the
    # seeds' differences correlated, so 12 pairs are not 12 independent units.
    rng = np.random.default_rng(0)
    draws = np.repeat(np.arange(4), 3)
    values = 0.02 + rng.normal(0, 0.05, 4)[draws] + rng.normal(0, 0.005, 12)
    naive = confidence_interval(values)
    nested = design_interval(values, draws)
    assert nested.unit == "split" and nested.n == 4 and naive.n == 12
    assert nested.high - nested.low > 2 * (naive.high - naive.low)
    assert nested.mean == pytest.approx(naive.mean)  # balanced: the same mean
    # One seed per draw: the draws are the pairs, and the interval is the ordinary one.
    assert design_interval(values, list(range(12))) == naive
    # One draw (a dataset's single official split): over seeds, conditional on that draw.
    single = design_interval(values, [7] * 12)
    assert single.unit == "seed" and single.units == "12 seeds"
    assert (single.mean, single.low, single.high) == (naive.mean, naive.low, naive.high)
    assert design_interval(values, None) == naive


def test_paired_interval_clusters_on_the_split_column():
    paired = _paired(_rows())[(5,)]  # pairs (split, seed): (0, 0), (0, 1), (1, 0)
    nested = paired_interval(paired, ["split_seed", "seed"])
    assert (nested.n, nested.runs) == (2, 3)
    assert nested.mean == pytest.approx(np.mean([0.095, 0.11]))
    flat = paired_interval(paired, ["split_seed", "seed"], nested_in=None)
    assert flat == confidence_interval(paired.differences)
    assert paired_interval(paired, ["seed"], nested_in="split_seed") == flat


def test_p_value_is_the_one_sample_t_test():
    values = [0.03, -0.01, 0.05, 0.02, 0.04]
    expected = scipy_stats.ttest_1samp(values, 0.0).pvalue
    assert p_value(confidence_interval(values)) == pytest.approx(expected)
    assert math.isnan(p_value(confidence_interval([0.2])))
    assert p_value(confidence_interval([0.1, 0.1])) == 0.0
    assert p_value(confidence_interval([0.0, 0.0])) == 1.0


def test_holm_textbook_example():
    # Holm (1979) as in the usual textbook example: four tests at alpha 0.05; the smallest
    # p (0.005) is tested at 0.05/4, then 0.01 at 0.05/3, then 0.03 > 0.05/2 stops.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]
    # Step-down monotone: 2 x 0.01 = 0.02 carries over to the larger raw p 0.011.
    assert holm([0.011, 0.01]) == pytest.approx([0.02, 0.02])
    # No test (NaN) stays NaN and does not count in m; an adjusted p is at most 1.
    found = holm([math.nan, 0.02, 0.6])
    assert math.isnan(found[0]) and found[1:] == pytest.approx([0.04, 0.6])
    assert holm([0.7, 0.8]) == [1.0, 1.0]


def test_min_detectable_difference_matches_the_noncentral_t_power():
    # Effect sizes from statsmodels 0.15's TTestPower().solve_power(nobs=n, alpha=0.05,
    # power=0.8, alternative='two-sided') (G*Power gives the same): MDD = d x sd.
    reference = {3: 3.264043552819638, 5: 1.6819970833232674, 9: 1.0669732445156874,
                 30: 0.5292357045238948}  # fmt: skip
    for n, effect in reference.items():
        assert min_detectable_difference(0.04, n) == pytest.approx(effect * 0.04, rel=1e-6)
    # Roughly (t_{0.975} + t_{0.8}) sd / sqrt(n).
    rough = (scipy_stats.t.ppf(0.975, 8) + scipy_stats.t.ppf(0.8, 8)) * 0.04 / 3
    assert min_detectable_difference(0.04, 9) == pytest.approx(rough, rel=0.03)
    assert math.isnan(min_detectable_difference(0.04, 1))
    assert min_detectable_difference(0.0, 9) == 0.0
    assert min_detectable_difference(1.0, 2) > 10  # 1 df: only a huge effect is detectable


def test_correct_family_marks_what_survives_holm():
    clear = confidence_interval([0.10, 0.11, 0.09, 0.10, 0.12])  # p = 3.4e-5
    marginal = confidence_interval([0.05, -0.005, 0.04, 0.06, 0.02])  # p = 0.046
    weak = confidence_interval([0.01, -0.02, 0.03, -0.01, 0.0])  # p = 0.9
    none = confidence_interval([0.01])
    found = correct_family([clear, marginal, none, weak])
    assert [c.family for c in found] == [3, 3, 3, 3]
    assert [c.uncorrected for c in found] == [1, 1, None, 0]
    # Holm: 3 x 3.4e-5, then 2 x 0.046 = 0.093 > 0.05: the marginal one no longer resolves.
    assert [c.corrected for c in found] == [1, 0, None, 0]
    assert found[1].p_holm == pytest.approx(2 * p_value(marginal))
    assert found[0].mdd == pytest.approx(min_detectable_difference(clear.sd, 5))
    assert math.isnan(found[2].mdd)


def test_design_note_names_units_correction_and_test_set():
    nested = nested_interval([0.1, 0.2, 0.3, 0.5], [0, 0, 1, 1])
    text = design_note([nested], family="this dataset's comparisons")
    assert "averaged per draw" in text and "Holm's correction over this dataset's" in text
    assert "conditional on that test set" in text
    assert "independent pairs" in design_note([confidence_interval([0.1, 0.2])])
    assert "one validation draw" in design_note([design_interval([0.1, 0.2], [0, 0])])
