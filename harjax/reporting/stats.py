"""Paired comparisons of variants: differences on matched runs, a confidence interval, a verdict.

A difference between two variants only counts when both ran on the same split, seed and k-shot
draw, so every comparison here is paired: rows are matched on the `pair_on` columns (e.g.
`split_seed`, `seed`) inside each group of `within` columns (e.g. `shots`), and the interval is
for the mean of the paired differences a - b. Runs without a partner are counted and reported,
never used. Like `tables`, nothing here knows which sweep wrote the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as scipy_stats

from harjax.reporting.tables import Row, group_rows, markdown_table, shots_key

Method = Literal["t", "bootstrap"]


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
    """Mean of the differences and its confidence interval; NaN bounds when n < 2."""

    mean: float
    low: float
    high: float
    n: int
    method: str
    level: float


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
        return Interval(float(values[0]), float(values[0]), float(values[0]), n, method, level)
    if method == "t":
        half = scipy_stats.t.ppf((1 + level) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
        return Interval(mean, mean - float(half), mean + float(half), n, method, level)
    if resamples < 1:
        raise ValueError(f"confidence_interval: resamples must be at least 1, found {resamples}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(mean, float(low), float(high), n, method, level)


def direction(interval: Interval) -> int | None:
    """+1 when the interval lies above zero, -1 below, 0 when it holds zero, None when n < 2."""
    if interval.n < 2:
        return None
    if interval.low > 0:
        return 1
    if interval.high < 0:
        return -1
    return 0


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


def _number(value: float, digits: int, sign: str = "") -> str:
    # round, then + 0.0: a rounding-level negative prints as 0.000, not -0.000.
    return f"{round(value, digits) + 0.0:{sign}.{digits}f}"


def _level(level: float) -> str:
    return f"{level * 100:g} %"


def verdict(a: Any, b: Any, interval: Interval, metric_name: str, digits: int = 3) -> str:
    """One plain sentence on a - b; a win is claimed only when the interval excludes zero.

    When b wins, the margin and interval are turned round to read as b - a.
    """
    sign = direction(interval)
    if sign is None:
        only = _pairs(interval.n)
        return f"cannot tell whether {a} or {b} has the higher {metric_name} (only {only})."

    def ci(low: float, high: float) -> str:
        return (
            f"{_level(interval.level)} CI {_number(low, digits)} to {_number(high, digits)}, "
            f"{_pairs(interval.n)}"
        )

    if sign > 0:
        return (
            f"{a} beats {b} by {_number(interval.mean, digits)} {metric_name} "
            f"({ci(interval.low, interval.high)})."
        )
    if sign < 0:
        return (
            f"{b} beats {a} by {_number(-interval.mean, digits)} {metric_name} "
            f"({ci(-interval.high, -interval.low)})."
        )
    return (
        f"no detectable difference in {metric_name} between {a} and {b} "
        f"(mean {_number(interval.mean, digits)}, {ci(interval.low, interval.high)})."
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


def comparisons(
    rows: Sequence[Row],
    *,
    metric: str,
    compare: str = _DEFAULTS["compare"],
    reference: Any,
    others: Sequence[Any],
    within: Sequence[str] = _DEFAULTS["within"],
    pair_on: Sequence[str] = ("split_seed", "seed"),
    level: float = _DEFAULTS["level"],
    method: Method = "t",
    seed: int = 0,
    resamples: int = 10_000,
) -> list[tuple[tuple, Any, Paired, Interval]]:
    """(group, other, Paired, Interval) per group and other variant: differences other - reference.

    Groups are sorted (`shots` by k, `all` last; other columns first-seen), then `others` in the
    order given; a group where neither ran is left out. The tables, sentences and plot read this.
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
    result = []
    for group in _sorted_groups(groups, within):
        for other in others:
            if group in found[other]:
                paired = found[other][group]
                interval = confidence_interval(
                    paired.differences, level=level, method=method, seed=seed, resamples=resamples
                )
                result.append((group, other, paired, interval))
    return result


def comparison_table(
    rows: Sequence[Row], *, metric: str, reference: Any, digits: int = 3, **options: Any
) -> str:
    """Markdown: one line per group and other variant, the paired difference other - reference.

    Columns: the `within` values, the variant, mean difference, CI, pairs used, unpaired runs
    (left out), and the verdict word for the other variant (better / worse / no detectable
    difference / cannot tell). `options`: the keywords of `comparisons`.
    """
    within = options.get("within", _DEFAULTS["within"])
    compare = options.get("compare", _DEFAULTS["compare"])
    level = options.get("level", _DEFAULTS["level"])
    header = [
        *within,
        compare,
        f"{metric} − {reference}",
        f"{_level(level)} CI",
        "pairs",
        "unpaired",
        "verdict",
    ]
    lines = []
    for group, other, paired, interval in comparisons(
        rows, metric=metric, reference=reference, **options
    ):
        ci = (
            "—"
            if interval.n < 2
            else f"{_number(interval.low, digits)} to {_number(interval.high, digits)}"
        )
        mean = "—" if interval.n == 0 else _number(interval.mean, digits, "+")
        lines.append(
            [*group, other, mean, ci, interval.n, paired.unpaired, WORDS[direction(interval)]]
        )
    return markdown_table(header, lines, "l" * (len(within) + 1) + "rrrrl")


def verdicts(
    rows: Sequence[Row], *, metric: str, reference: Any, digits: int = 3, **options: Any
) -> list[str]:
    """`verdict` of each other variant against `reference`, prefixed by its group ("shots=5: ").

    `options`: the keywords of `comparisons`.
    """
    within = options.get("within", _DEFAULTS["within"])
    sentences = []
    for group, other, _, interval in comparisons(
        rows, metric=metric, reference=reference, **options
    ):
        where = ", ".join(f"{column}={value}" for column, value in zip(within, group))
        sentence = verdict(other, reference, interval, metric, digits)
        sentences.append(f"{where}: {sentence}" if where else sentence)
    return sentences
