"""Paired comparisons: matching, t and bootstrap intervals against scipy, verdict sentences."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harjax.reporting.stats import (
    Interval,
    comparison_table,
    confidence_interval,
    paired_differences,
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
    table = _compare(comparison_table).splitlines()
    assert table[0] == (
        "| shots | variant | macro_f1 − random | 95 % CI | pairs | unpaired | verdict |"
    )
    assert table[2].startswith("| 1 | pretrained | +0.100 | — | 1 | 0 | cannot tell |")
    assert table[3].startswith("| 5 | pretrained | +0.100 | 0.075 to 0.125 | 3 | 2 | better |")
    assert table[4] == (
        "| all | pretrained | +0.000 | -1.271 to 1.271 | 2 | 0 | no detectable difference |"
    )
    assert len(table) == 5


def test_verdicts_name_the_group():
    sentences = _compare(verdicts)
    assert [s.split(":")[0] for s in sentences] == ["shots=1", "shots=5", "shots=all"]
    assert sentences[1] == (
        "shots=5: pretrained beats random by 0.100 macro_f1 (95 % CI 0.075 to 0.125, 3 pairs)."
    )
