"""Paired comparisons of variants: differences on matched runs, a confidence interval, a verdict.

A difference between two variants only counts when both ran on the same split, seed and k-shot
draw, so every comparison here is paired: rows are matched on the `pair_on` columns (e.g.
`split_seed`, `seed`) inside each group of `within` columns (e.g. `shots`), and the interval is
for the mean of the paired differences a - b. Runs without a partner are counted and reported,
never used. Like `tables`, nothing here knows which sweep wrote the rows.

The design, not the row count, sets the interval's units: seeds run on one validation draw
(`split_seed`) share it, so their differences are correlated, and several seeds per draw are
averaged per draw first (`nested_interval`; with one seed per draw that is the ordinary paired
interval). Each table's comparisons are one family, Holm-corrected (`holm`, `correct_family`); each
comparison carries its uncorrected interval, its Holm-adjusted p and its minimum detectable
difference at 80 % power (`min_detectable_difference`). With a fixed test set (an official
split) every interval is conditional on it (`CONDITIONAL`). The summary and every results page
read these functions, so one table never computes a number two ways.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import stats as scipy_stats
from scipy.optimize import brentq

from harjax.reporting.tables import Row, group_rows, markdown_table, shots_key

Method = Literal["t", "bootstrap"]

NESTED_IN = "split_seed"  # the pairing column that seeds are nested in (one validation draw each)
POWER = 0.8  # the power the minimum detectable difference is stated at
CONDITIONAL = (
    "Where a study scores one fixed test set (an official split: UCI-HAR's test subjects, a UEA "
    "set's TEST file) its intervals are conditional on that test set: they cover validation "
    "draws, seeds and k-shot draws, not another draw of test subjects; where each split draws "
    "its own test subjects they cover that draw too."
)


@dataclass(frozen=True)
class Paired:
    """One group's matched differences a - b, with the `pair_on` values of each pair."""

    differences: list[float]
    pairs: list[tuple]
    only_a: list[tuple] = field(default_factory=list)  # pair keys run for a but not for b
    only_b: list[tuple] = field(default_factory=list)

    @property
    def unpaired(self) -> int:
        return len(self.only_a) + len(self.only_b)


@dataclass(frozen=True)
class Interval:
    """Mean of the differences and its confidence interval; NaN bounds when n < 2.

    `n` counts the independent units the interval is over: pairs, or validation draws
    (`unit` 'split') when seeds nested in a draw were averaged first (`nested_interval`);
    `runs` is then the number of paired runs behind them; 'seed' when every run shares one
    draw (the interval is conditional on it). `sd` is the units' sample sd.
    """

    mean: float
    low: float
    high: float
    n: int
    method: str
    level: float
    sd: float = math.nan
    unit: str = "pair"  # 'pair' | 'split' | 'seed'
    runs: int | None = None  # paired runs behind the n units (None: n, one run per unit)

    @property
    def units(self) -> str:
        """'9 pairs', or '3 splits (9 pairs)' for a nested interval."""
        plural = lambda count, word: f"{count} {word}" + ("" if count == 1 else "s")
        text = plural(self.n, self.unit)
        if self.unit != "pair" and self.runs is not None:
            text += f" ({plural(self.runs, 'pair')})"
        return text


def _pair_sort_key(key: tuple) -> tuple:
    # Numbers by value, anything else by text: the order (and so a seeded bootstrap) does not
    # depend on the order rows were appended in.
    return tuple((0, float(v), "") if isinstance(v, int | float) else (1, 0.0, str(v)) for v in key)


def paired_differences(
    rows: Sequence[Row],
    *,
    metric: str,
    compare: str,
    a: Any,
    b: Any,
    within: Sequence[str],
    pair_on: Sequence[str],
) -> dict[tuple, Paired]:
    """{values of `within`: the differences a - b of `metric` over runs matched on `pair_on`}.

    Only rows whose `compare` column is `a` or `b` are read; a group appears when either ran in
    it. Pairs are sorted by their `pair_on` values. The same run twice is an error (as in
    `tables.group_rows`), and so is a missing, empty or NaN `metric`.
    """
    chosen = [row for row in rows if row.get(compare) in (a, b)]
    runs = group_rows(chosen, [*within, *pair_on], replicate=compare)
    found: dict[tuple, dict[Any, dict[tuple, float]]] = {}
    for key, group in runs.items():
        for row in group:
            value = row.get(metric)
            if value is None or math.isnan(float(value)):
                where = dict(zip((*within, *pair_on, compare), (*key, row[compare])))
                raise ValueError(f"run {where}: no {metric!r} value (found {value!r})")
            side = found.setdefault(key[: len(within)], {a: {}, b: {}})[row[compare]]
            side[key[len(within) :]] = float(value)
    result = {}
    for group, sides in found.items():
        matched = sorted(set(sides[a]) & set(sides[b]), key=_pair_sort_key)
        result[group] = Paired(
            differences=[sides[a][pair] - sides[b][pair] for pair in matched],
            pairs=matched,
            only_a=sorted(set(sides[a]) - set(sides[b]), key=_pair_sort_key),
            only_b=sorted(set(sides[b]) - set(sides[a]), key=_pair_sort_key),
        )
    return result


def confidence_interval(
    differences: Sequence[float],
    *,
    level: float = 0.95,
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> Interval:
    """Confidence interval for the mean of paired differences.

    `t`: mean ± t_{n-1, (1+level)/2} · sd / sqrt(n) (sample sd, quantile from scipy).
    `bootstrap`: percentile bootstrap of the mean, `resamples` draws of n with replacement from
    `numpy.random.default_rng(seed)`, so the same seed gives the same interval; with few pairs
    (a handful of seeds) it is too narrow, since n values allow few distinct resamples, so
    prefer `t` there. With n < 2 no spread can be estimated and the bounds are NaN; when all
    differences are equal the interval is degenerate, low = high = mean.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence_interval: level must be in (0, 1), found {level}")
    if method not in ("t", "bootstrap"):
        raise ValueError(
            f"confidence_interval: method must be 't' or 'bootstrap', found {method!r}"
        )
    values = np.asarray(differences, dtype=np.float64)
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, method, level)
    mean = float(values.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, method, level)
    if np.all(values == values[0]):
        # Exactly degenerate: avoids a rounding-level spread around a mean of equal values.
        return Interval(
            float(values[0]), float(values[0]), float(values[0]), n, method, level, sd=0.0
        )
    sd = float(values.std(ddof=1))
    if method == "t":
        half = scipy_stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n)
        return Interval(mean, mean - float(half), mean + float(half), n, method, level, sd=sd)
    if resamples < 1:
        raise ValueError(f"confidence_interval: resamples must be at least 1, found {resamples}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(mean, float(low), float(high), n, method, level, sd=sd)


def nested_interval(
    values: Sequence[float],
    clusters: Sequence[Hashable],
    *,
    level: float = 0.95,
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> Interval:
    """Interval for the mean of `values` whose runs are nested in `clusters` (seeds in
    validation draws): the values are averaged per cluster, then `confidence_interval` is taken
    over the cluster means (n = clusters, n - 1 degrees of freedom).

    Why this one: the seeds of one draw share its validation subjects (they choose the early
    stopping step, and through the protocol the setting), so their differences are correlated;
    treating c draws x m seeds as c·m independent pairs shrinks the variance of the mean by
    the design effect 1 + (m - 1)·ρ (ρ the within-draw correlation) and claims c·m - 1 degrees
    of freedom where the design has c - 1. In the two-level model d_ij = μ + a_i + e_ij
    (draw effect a_i, seed noise e_ij) with m seeds per draw, the mean of the draw means is the
    grand mean, and the sample variance of the draw means estimates Var(a) + Var(e)/m exactly,
    so the t interval over draw means is the exact interval for μ (the same as the random-
    effects ANOVA test of μ, whose error term is the between-draw mean square on c - 1 df),
    without estimating ρ. With unequal seeds per draw each draw still weighs the same (a valid,
    slightly conservative interval). With one run per cluster it is `confidence_interval`.
    """
    if len(values) != len(clusters):
        raise ValueError(
            f"nested_interval: expected one cluster per value, found {len(values)} values and "
            f"{len(clusters)} clusters"
        )
    members: dict[Hashable, list[float]] = {}
    for value, cluster in zip(values, clusters):
        members.setdefault(cluster, []).append(float(value))
    order = sorted(members, key=lambda c: _pair_sort_key((c,)))
    means = [float(np.mean(members[c])) for c in order]
    interval = confidence_interval(
        means, level=level, method=method, seed=seed, resamples=resamples
    )
    return replace(interval, unit="split", runs=len(values))


def design_interval(
    values: Sequence[float],
    clusters: Sequence[Hashable] | None,
    *,
    level: float = 0.95,
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> Interval:
    """The interval the design calls for: `nested_interval` when some cluster (validation draw)
    holds several runs and there are at least two clusters; otherwise the ordinary interval
    over the runs (one run per draw: the runs are independent; a single draw, as on the UEA
    sets' one validation split: the interval is over seeds (`unit` 'seed'), conditional on
    that draw)."""
    options = dict(level=level, method=method, seed=seed, resamples=resamples)
    if clusters is not None:
        distinct = len(set(clusters))
        if 2 <= distinct < len(clusters):
            return nested_interval(values, clusters, **options)
        if distinct == 1 and len(clusters) > 1:
            return replace(confidence_interval(values, **options), unit="seed")
    return confidence_interval(values, **options)


def clusters_of(pairs: Sequence[tuple], pair_on: Sequence[str], nested_in: str | None):
    """Each pair's value of the `nested_in` column (None when it is not a pairing column)."""
    if nested_in is None or nested_in not in pair_on:
        return None
    index = list(pair_on).index(nested_in)
    return [pair[index] for pair in pairs]


def paired_interval(
    paired: Paired,
    pair_on: Sequence[str],
    *,
    nested_in: str | None = NESTED_IN,
    level: float = 0.95,
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> Interval:
    """`design_interval` of matched differences, clustered on their `nested_in` value."""
    return design_interval(
        paired.differences,
        clusters_of(paired.pairs, pair_on, nested_in),
        level=level,
        method=method,
        seed=seed,
        resamples=resamples,
    )


def p_value(interval: Interval) -> float:
    """Two-sided one-sample t-test p of mean = 0 on the interval's units (NaN when n < 2).

    It rejects at level 1 - `interval.level` exactly when the t interval excludes zero, and it
    is what `holm` corrects (also for a bootstrap interval). Equal differences (sd 0): 0 unless
    the mean is 0.
    """
    if interval.n < 2 or math.isnan(interval.sd):
        return math.nan
    if interval.sd == 0:
        return 1.0 if interval.mean == 0 else 0.0
    t = interval.mean / (interval.sd / math.sqrt(interval.n))
    return float(2 * scipy_stats.t.sf(abs(t), interval.n - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given.

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of
    min(1, (m - j + 1) · p_(j)). Rejecting where adjusted p < alpha controls the family-wise
    error rate at alpha under any dependence between the tests (the comparisons of a table
    share their reference runs). NaN p-values (fewer than 2 units) are not tests: they stay NaN
    and do not count in m.
    """
    values = [float(p) for p in p_values]
    tested = sorted((p, i) for i, p in enumerate(values) if not math.isnan(p))
    m = len(tested)
    adjusted = [math.nan] * len(values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def min_detectable_difference(
    sd: float, n: int, *, alpha: float = 0.05, power: float = POWER
) -> float:
    """The smallest true mean difference a two-sided paired t-test at `alpha` on n units with
    this sd of differences detects with probability `power` (NaN when n < 2).

    Solves power = P(T' > t_c) + P(T' < -t_c) for δ, T' noncentral t with n - 1 df and
    noncentrality δ·sqrt(n)/sd, t_c = t_{1 - alpha/2, n - 1} (as G*Power or statsmodels'
    `TTestPower`). Roughly δ ≈ (t_{1 - alpha/2, n - 1} + t_{power, n - 1})·sd/sqrt(n): at n = 9
    it is 1.07·sd, at n = 3 (three draws) 3.26·sd. The sd is the observed one, so this is the
    detectable effect of a study with this spread, not a property of the true difference.
    """
    if n < 2 or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df = n - 1
    critical = scipy_stats.t.ppf(1 - alpha / 2, df)

    def shortfall(effect: float) -> float:  # effect = δ / sd
        shift = effect * math.sqrt(n)
        # The far tail underflows to NaN in scipy at large shifts (1 df): it is 0 there.
        far = float(np.nan_to_num(scipy_stats.nct.cdf(-critical, df, shift)))
        return float(scipy_stats.nct.sf(critical, df, shift)) + far - power

    high = 1.0
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-12)) * sd


@dataclass(frozen=True)
class Corrected:
    """One comparison of a family: its interval, p, Holm-adjusted p and detectable difference."""

    interval: Interval
    p: float  # two-sided t-test p, uncorrected
    p_holm: float  # Holm-adjusted within the family
    family: int  # tests in the family (those with n >= 2)
    mdd: float  # minimum detectable difference at POWER, two-sided alpha = 1 - level

    @property
    def alpha(self) -> float:
        return 1 - self.interval.level

    @property
    def uncorrected(self) -> int | None:
        """`direction` of the uncorrected interval."""
        return direction(self.interval)

    @property
    def corrected(self) -> int | None:
        """+1 / -1 when the Holm-adjusted p is below alpha, 0 when not, None when n < 2."""
        sign = direction(self.interval)
        if sign is None:
            return None
        if self.p_holm < self.alpha:
            return 1 if self.interval.mean > 0 else -1
        return 0


def correct_family(intervals: Sequence[Interval], power: float = POWER) -> list[Corrected]:
    """Each interval's p, Holm-adjusted p over all of `intervals` (one family) and MDD."""
    p_values = [p_value(interval) for interval in intervals]
    adjusted = holm(p_values)
    family = sum(not math.isnan(p) for p in p_values)
    return [
        Corrected(
            interval,
            p,
            p_holm,
            family,
            min_detectable_difference(
                interval.sd, interval.n, alpha=1 - interval.level, power=power
            ),
        )
        for interval, p, p_holm in zip(intervals, p_values, adjusted)
    ]


def design_note(
    intervals: Sequence[Interval], family: str = "the comparisons of this table (one family)"
) -> str:
    """The sentence a report header says about its intervals: units, correction, conditioning."""
    kinds = {interval.unit for interval in intervals if interval.n >= 2}
    units = []
    if "split" in kinds:
        units.append(
            "over validation draws: the seeds of a draw share its validation subjects, so "
            "their values are averaged per draw first (`stats.nested_interval`)"
        )
    if "seed" in kinds:
        units.append(
            "over seeds on the one validation draw, so also conditional on that draw"
        )
    if "pair" in kinds or not units:
        units.append("over independent pairs (one run per validation draw and seed)")
    level = _level(intervals[0].level) if intervals else "95 %"
    return (
        f"{level} t intervals {'; '.join(units)}. Verdicts are given uncorrected and after "
        f"Holm's correction over {family}; MDD is the smallest difference a paired t-test at "
        f"that level detects with {POWER * 100:g} % power given the observed spread. "
        f"{CONDITIONAL}"
    )


def direction(interval: Interval) -> int | None:
    """+1 when the interval lies above zero, -1 below, 0 when it holds zero, None when n < 2."""
    if interval.n < 2:
        return None
    if interval.low > 0:
        return 1
    if interval.high < 0:
        return -1
    return 0


def _number(value: float, digits: int, sign: str = "") -> str:
    # round, then + 0.0: a rounding-level negative prints as 0.000, not -0.000.
    return f"{round(value, digits) + 0.0:{sign}.{digits}f}"


def _level(level: float) -> str:
    return f"{level * 100:g} %"


def format_p(value: float) -> str:
    """'0.012', '< 0.001', or '—' for no test."""
    return "—" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def verdict(
    a: Any,
    b: Any,
    interval: Interval,
    metric_name: str,
    digits: int = 3,
    corrected: Corrected | None = None,
) -> str:
    """One plain sentence on a - b; a win is claimed only when the interval excludes zero.

    When b wins, the margin and interval are turned round to read as b - a. With `corrected`
    (the comparison's place in its Holm family) the sentence says that the interval is
    uncorrected, whether the verdict survives Holm's correction, and beside "no detectable
    difference" the smallest difference the comparison could have detected.
    """
    sign = direction(interval)
    if sign is None:
        return (
            f"cannot tell whether {a} or {b} has the higher {metric_name} "
            f"(only {interval.units})."
        )
    tag = "; uncorrected" if corrected is not None else ""

    def ci(low: float, high: float) -> str:
        return (
            f"{_level(interval.level)} CI {_number(low, digits)} to {_number(high, digits)}, "
            f"{interval.units}{tag}"
        )

    if sign > 0:
        text = (
            f"{a} beats {b} by {_number(interval.mean, digits)} {metric_name} "
            f"({ci(interval.low, interval.high)})"
        )
    elif sign < 0:
        text = (
            f"{b} beats {a} by {_number(-interval.mean, digits)} {metric_name} "
            f"({ci(-interval.high, -interval.low)})"
        )
    else:
        text = (
            f"no detectable difference in {metric_name} between {a} and {b} "
            f"(mean {_number(interval.mean, digits)}, {ci(interval.low, interval.high)})"
        )
    if corrected is None:
        return text + "."
    if sign == 0:
        return (
            f"{text}; the smallest difference it could detect with {POWER * 100:g} % power is "
            f"{_number(corrected.mdd, digits)}."
        )
    held = "still resolved" if corrected.corrected else "no longer resolved"
    return (
        f"{text}; after Holm's correction over the {corrected.family} comparisons of its "
        f"family: {held} (adjusted p {format_p(corrected.p_holm)})."
    )


WORDS = {1: "better", -1: "worse", 0: "no detectable difference", None: "cannot tell"}


def _sorted_groups(groups: Sequence[tuple], within: Sequence[str]) -> list[tuple]:
    # `shots` columns sort by k (`all` last); other columns keep their first-seen order.
    first_seen = [list(dict.fromkeys(group[i] for group in groups)) for i in range(len(within))]

    def key(group: tuple) -> tuple:
        return tuple(
            shots_key(value) if column == "shots" else first_seen[i].index(value)
            for i, (column, value) in enumerate(zip(within, group))
        )

    return sorted(groups, key=key)


_DEFAULTS = {"within": ("shots",), "compare": "variant", "level": 0.95}


class Compared(NamedTuple):
    """One comparison of a table: other - reference in one group, in its Holm family."""

    group: tuple
    other: Any
    paired: Paired
    interval: Interval
    corrected: Corrected


def comparisons(
    rows: Sequence[Row],
    *,
    metric: str,
    compare: str = _DEFAULTS["compare"],
    reference: Any,
    others: Sequence[Any],
    within: Sequence[str] = _DEFAULTS["within"],
    pair_on: Sequence[str] = ("split_seed", "seed"),
    nested_in: str | None = NESTED_IN,
    level: float = _DEFAULTS["level"],
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> list[Compared]:
    """A `Compared` per group and other variant: differences other - reference.

    Groups are sorted (`shots` by k, `all` last; other columns first-seen), then `others` in the
    order given; a group where neither ran is left out. Each interval follows the design
    (`paired_interval`: seeds nested in `nested_in` averaged per draw first), and all the
    comparisons returned are one Holm family (`correct_family`). The tables, sentences and plot
    read this.
    """
    found = {
        other: paired_differences(
            rows,
            metric=metric,
            compare=compare,
            a=other,
            b=reference,
            within=within,
            pair_on=pair_on,
        )
        for other in others
    }
    groups = list(dict.fromkeys(group for paired in found.values() for group in paired))
    chosen = []
    for group in _sorted_groups(groups, within):
        for other in others:
            if group in found[other]:
                paired = found[other][group]
                interval = paired_interval(
                    paired,
                    pair_on,
                    nested_in=nested_in,
                    level=level,
                    method=method,
                    seed=seed,
                    resamples=resamples,
                )
                chosen.append((group, other, paired, interval))
    corrected = correct_family([interval for *_, interval in chosen])
    return [Compared(*item, fixed) for item, fixed in zip(chosen, corrected)]


def comparison_table(
    rows: Sequence[Row], *, metric: str, reference: Any, digits: int = 3, **options: Any
) -> str:
    """Markdown: one line per group and other variant, the paired difference other - reference.

    Columns: the `within` values, the variant, mean difference, uncorrected CI, the units it is
    over (pairs, or validation draws with the pairs behind them), unpaired runs (left out), the
    uncorrected verdict word for the other variant (better / worse / no detectable difference /
    cannot tell), the Holm-adjusted p and verdict over the table's comparisons (one family),
    and the minimum detectable difference at 80 % power. `options`: the keywords of
    `comparisons`.
    """
    within = options.get("within", _DEFAULTS["within"])
    compare = options.get("compare", _DEFAULTS["compare"])
    level = options.get("level", _DEFAULTS["level"])
    header = [
        *within,
        compare,
        f"{metric} − {reference}",
        f"{_level(level)} CI",
        "n",
        "unpaired",
        "verdict (uncorrected)",
        "Holm p",
        "after Holm",
        f"MDD ({POWER * 100:g} %)",
    ]
    lines = []
    for found in comparisons(rows, metric=metric, reference=reference, **options):
        interval, corrected = found.interval, found.corrected
        ci = (
            "—"
            if interval.n < 2
            else f"{_number(interval.low, digits)} to {_number(interval.high, digits)}"
        )
        mean = "—" if interval.n == 0 else _number(interval.mean, digits, "+")
        mdd = "—" if math.isnan(corrected.mdd) else _number(corrected.mdd, digits)
        lines.append(
            [
                *found.group,
                found.other,
                mean,
                ci,
                interval.units,
                found.paired.unpaired,
                WORDS[corrected.uncorrected],
                format_p(corrected.p_holm),
                WORDS[corrected.corrected],
                mdd,
            ]
        )
    return markdown_table(header, lines, "l" * (len(within) + 1) + "rrrrlrlr")


def verdicts(
    rows: Sequence[Row], *, metric: str, reference: Any, digits: int = 3, **options: Any
) -> list[str]:
    """`verdict` of each other variant against `reference`, prefixed by its group ("shots=5: "),
    each saying whether it survives Holm over the table's family. `options`: the keywords of
    `comparisons`."""
    within = options.get("within", _DEFAULTS["within"])
    sentences = []
    for found in comparisons(rows, metric=metric, reference=reference, **options):
        where = ", ".join(f"{column}={value}" for column, value in zip(within, found.group))
        sentence = verdict(
            found.other, reference, found.interval, metric, digits, corrected=found.corrected
        )
        sentences.append(f"{where}: {sentence}" if where else sentence)
    return sentences
