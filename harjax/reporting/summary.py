"""The cross-dataset summary: per dataset and k, the method (`pretrained`) against its best
control and against every baseline (`cnn`, `classical`, `rocket`), each a paired difference with
its interval and verdict. The roles come from the variant table (`harjax.variants`): a control
or baseline added there is compared here too.

Every study's rows go through the protocol first (`sweeps.protocol.select`: each variant's
setting chosen per k on validation). "Best control" is the control variant (`random`,
`shuffled`, `none`, `scratch`) with the highest mean **validation** macro-F1 at that k, so the
strongest rival is named without reading a test score. Differences are pretrained − other on
test macro-F1, paired on (split seed, seed): positive means the method is better. Intervals,
Holm correction and detectable differences are `reporting.stats`' (seeds nested in validation
draws averaged per draw first); one dataset's comparisons of one metric are one Holm family.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harjax import variants as variant_table
from harjax.reporting import stats, tables

REFERENCE = variant_table.REFERENCE
CONTROLS = variant_table.CONTROLS  # random, shuffled, none, scratch
BASELINES = variant_table.BASELINES  # cnn, classical, rocket
PAIR_ON = variant_table.PAIR_ON
# A quarter of a side's runs at the first evaluation: steps_to_95 cannot say how much sooner
# they got there, and a difference between the sides is bounded by the evaluation spacing.
FLOOR_BINDS = 0.25


@dataclass(frozen=True)
class Comparison:
    dataset: str
    shots: Any
    rival: str  # the variant pretrained is compared with
    role: str  # 'best control' | the baseline's name (`BASELINES`)
    interval: stats.Interval
    metric: str = "macro_f1"  # or 'steps_to_95': fewer is better
    corrected: stats.Corrected | None = None  # its place in the dataset's Holm family
    # steps_to_95 only: the fraction of pretrained's and the rival's runs that reached 95 % at
    # their first evaluation (the measure's floor); None where the rows do not say.
    at_floor: tuple[float | None, float | None] = (None, None)

    def _word(self, sign: int | None) -> str:
        if sign is None:
            return "cannot tell (fewer than 2 pairs)"
        if sign == 0:
            return "no detectable difference"
        if self.metric == "steps_to_95":
            return "pretrained faster" if sign < 0 else "pretrained slower"
        return "pretrained better" if sign > 0 else "pretrained worse"

    @property
    def verdict(self) -> str:
        """The uncorrected verdict: the interval excludes zero or not."""
        return self._word(stats.direction(self.interval))

    @property
    def holm_verdict(self) -> str:
        """The verdict after Holm's correction over the dataset's family."""
        if self.corrected is None:
            return self.verdict
        return self._word(self.corrected.corrected)

    @property
    def floor_binds(self) -> bool:
        """Whether the convergence measure's floor binds: at least FLOOR_BINDS of either side's
        runs reached 95 % at their first evaluation, so their true step is censored."""
        return any(f is not None and f >= FLOOR_BINDS for f in self.at_floor)


def _mean(rows: Sequence[dict[str, Any]], variant: str, shots: Any, metric: str) -> float:
    values = [
        float(r[metric])
        for r in rows
        if r["variant"] == variant and r["shots"] == shots and r.get(metric) is not None
    ]
    return float(np.mean(values)) if values else -math.inf


def compare(
    dataset: str, kept_rows: Sequence[dict[str, Any]], metric: str = "macro_f1"
) -> list[Comparison]:
    """The summary's comparisons of one study, from its protocol-selected rows: test macro-F1,
    or `steps_to_95` (steps until validation macro-F1 first reaches 95 % of the run's final
    value: the paper's convergence measure, relative to each run's own end point, so read it
    beside the scores). A rival with no value of `metric` (`classical` trains no steps) is
    left out; a run without one stays unpaired."""
    found = []
    shots_values = sorted({r["shots"] for r in kept_rows}, key=tables.shots_key)
    variants = {r["variant"] for r in kept_rows}
    if REFERENCE not in variants:
        return found
    for shots in shots_values:
        controls = [c for c in CONTROLS if c in variants]
        rivals = []
        if controls:
            best = max(controls, key=lambda c: _mean(kept_rows, c, shots, "val_macro_f1"))
            rivals.append((best, "best control"))
        rivals += [(name, name) for name in BASELINES if name in variants]
        rivals = [
            (rival, role)
            for rival, role in rivals
            if any(r["variant"] == rival and r.get(metric) is not None for r in kept_rows)
        ]
        for rival, role in rivals:
            paired = stats.paired_differences(
                [r for r in kept_rows if r["shots"] == shots and r.get(metric) is not None],
                metric=metric,
                compare="variant",
                a=REFERENCE,
                b=rival,
                within=("shots",),
                pair_on=PAIR_ON,
            ).get((shots,))
            interval = stats.paired_interval(paired or stats.Paired([], []), PAIR_ON)
            floor = (None, None)
            if metric == "steps_to_95":
                floor = (
                    at_first_evaluation(kept_rows, REFERENCE, shots),
                    at_first_evaluation(kept_rows, rival, shots),
                )
            found.append(
                Comparison(dataset, shots, rival, role, interval, metric, at_floor=floor)
            )
    corrected = stats.correct_family([c.interval for c in found])
    return [dataclasses.replace(c, corrected=fixed) for c, fixed in zip(found, corrected)]


def at_first_evaluation(rows: Sequence[dict[str, Any]], variant: str, shots: Any) -> float | None:
    """The fraction of a variant's runs at k whose steps_to_95 is their first evaluation step
    (`first_eval_step`): the convergence measure's floor. None without that column."""
    runs = [
        r
        for r in rows
        if r["variant"] == variant and r["shots"] == shots and r.get("steps_to_95") is not None
    ]
    if not runs or any(r.get("first_eval_step") is None for r in runs):
        return None
    return sum(int(r["steps_to_95"]) <= int(r["first_eval_step"]) for r in runs) / len(runs)


def summary_table(comparisons: Sequence[Comparison]) -> str:
    """Markdown: one line per (dataset, k, rival): the uncorrected interval and verdict, the
    Holm-adjusted p and verdict over the dataset's family, the minimum detectable difference at
    80 % power; for steps_to_95 also the share of runs at the first evaluation (pretrained /
    rival), marked "floor" where it binds (`Comparison.floor_binds`)."""
    convergence = any(c.metric == "steps_to_95" for c in comparisons)
    lines = []
    for c in comparisons:
        ci = c.interval
        digits = 1 if c.metric == "steps_to_95" else 3
        interval = "—" if ci.n < 2 else f"{ci.low:+.{digits}f} to {ci.high:+.{digits}f}"
        mean = "—" if ci.n < 1 else f"{ci.mean:+.{digits}f}"
        rival = c.rival if c.role != "best control" else f"{c.rival} (best control)"
        holm_p = "—" if c.corrected is None else stats.format_p(c.corrected.p_holm)
        mdd = (
            "—"
            if c.corrected is None or math.isnan(c.corrected.mdd)
            else f"{c.corrected.mdd:.{digits}f}"
        )
        line = [c.dataset, c.shots, rival, mean, interval, ci.units, c.verdict]
        line += [holm_p, c.holm_verdict, mdd]
        if convergence:
            shares = "/".join("–" if f is None else f"{f:.0%}" for f in c.at_floor)
            line.append(shares + (" **floor**" if c.floor_binds else ""))
        lines.append(line)
    header = ["dataset", "k", "against", "pretrained − it", "95 % CI", "n", "verdict"]
    header += ["Holm p", "after Holm", "MDD (80 %)"]
    if convergence:
        header.append("at 1st eval (pretrained/it)")
    return tables.markdown_table(header, lines, "lllrrrlrlr" + ("r" if convergence else ""))


def scores_table(kept_rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one study's test macro-F1 per variant (rows) and k (columns), mean ± std over
    its pairs; the header gives each column's runs per variant, a cell with fewer its n."""
    shots_values = sorted({r["shots"] for r in kept_rows}, key=tables.shots_key)
    variants = tables.ordered((r["variant"] for r in kept_rows), variant_table.NAMES)
    values = {
        (variant, shots): [
            float(r["macro_f1"])
            for r in kept_rows
            if r["variant"] == variant and r["shots"] == shots
        ]
        for variant in variants
        for shots in shots_values
    }
    runs = {shots: max(len(values[(v, shots)]) for v in variants) for shots in shots_values}
    lines = []
    for variant in variants:
        cells = []
        for shots in shots_values:
            found = values[(variant, shots)]
            text = tables.format_mean_std(found) if found else "—"
            # A cell of fewer runs than its column (a partial study) says so.
            cells.append(text + (f" (n={len(found)})" if 0 < len(found) < runs[shots] else ""))
        lines.append([variant, *cells])
    header = ["variant", *(f"k = {k} ({runs[k]} runs)" for k in shots_values)]
    return tables.markdown_table(header, lines, "l" + "r" * len(shots_values))
