"""The cross-dataset summary of README: every study's results.csv -> summary.md and summary.png.

    python docs/results/summary.py

Per dataset and k: `pretrained` against its best control (chosen on validation) and every
baseline of the variant table that the study ran (`harjax.reporting.summary`). A study whose
results.md counts fewer finished than planned runs is listed as partial: its rows are the
finished runs only.
"""

from pathlib import Path

from harjax.reporting import plots, stats, summary, tables
from harjax.sweeps import protocol

HERE = Path(__file__).parent
STUDIES = (  # (name in the tables, the study's run directory)
    ("smartwatch", HERE / "study" / "runs"),
    ("UCI-HAR reduced", HERE / "uci_har" / "runs"),
    ("UEA Epilepsy", HERE / "uea" / "Epilepsy"),
    ("UEA UWaveGestureLibrary", HERE / "uea" / "UWaveGestureLibrary"),
    ("UEA Handwriting", HERE / "uea" / "Handwriting"),
)


def _tally(comparisons) -> list[str]:
    """Per role: how many comparisons resolve uncorrected and how many after Holm."""
    lines = []
    for role in dict.fromkeys(c.role for c in comparisons):
        mine = [c for c in comparisons if c.role == role and c.interval.n >= 2]
        count = lambda verdicts: {
            v: verdicts.count(v) for v in dict.fromkeys(verdicts) if v != "no detectable difference"
        }
        before = count([c.verdict for c in mine])
        after = count([c.holm_verdict for c in mine])
        say = lambda found: ", ".join(f"{n} {v}" for v, n in found.items()) or "none"
        lines.append(
            f"- against {role}: {len(mine)} comparisons; resolved uncorrected: {say(before)}; "
            f"after Holm: {say(after)}."
        )
    return [*lines, ""] if lines else []


def main() -> None:
    comparisons, convergence, notes, score_tables = [], [], [], []
    for name, directory in STUDIES:
        if not (directory / "results.csv").exists():
            notes.append(f"- {name}: not run yet.")
            continue
        rows = protocol.kept(protocol.select(tables.read_csv(directory / "results.csv")))
        finished, planned = tables.read_completeness(directory / "results.md")
        if finished < planned:
            name = f"{name} (partial)"
            notes.append(f"- {name}: {finished} of {planned} runs finished; only they count.")
        comparisons += summary.compare(name, rows)
        convergence += summary.compare(name, rows, metric="steps_to_95")
        score_tables += [f"### {name}", "", summary.scores_table(rows)]
    every = [c.interval for c in comparisons + convergence]
    text = [
        "# Cross-dataset summary",
        "",
        "Test macro-F1 of `pretrained` minus its rival, paired on (split seed, seed); each "
        "variant's setting chosen on validation, the best control too "
        "(`harjax.reporting.summary`). Written by `python docs/results/summary.py` from the "
        "committed results.csv of each study. Every study ran in bfloat16 (`auto`) on a 2-core "
        "AMD EPYC with avx512_bf16; each study's results.md names its machine, dtype and code.",
        "",
        "**Statistics.** "
        + stats.design_note(every, family="one dataset's comparisons (its k values x best "
        "control, cnn, classical: one family; the convergence table's are another)")
        + " UCI-HAR and smartwatch: 3 validation draws x 3 seeds, so n = 3 draws; UEA: one "
        "validation draw (the official TRAIN/TEST files) x 5 seeds, so n = 5 seeds on that "
        "draw.",
        "",
        summary.summary_table(comparisons),
        *notes,
        "",
        *_tally(comparisons),
        "## Convergence: steps to 95 % of the run's final validation macro-F1",
        "",
        "The paper's fast-convergence measure, per run: training steps until validation "
        "macro-F1 first reaches 95 % of the run's final value (`steps_to_95`), pretrained "
        "minus its rival, paired as above (negative: pretrained gets there sooner). It is "
        "relative to each run's own end point, so a run that settles early on a poor score is "
        "fast here: read it beside the scores. `classical` trains no steps. **Its floor:** a run "
        "cannot reach 95 % before its first evaluation (step 10: every run of these studies "
        "validates every 10 steps), and at k = 1 about half the runs are there already; "
        "the last column gives the share of pretrained's / the rival's runs at their first "
        f"evaluation, **floor** where either is {summary.FLOOR_BINDS:.0%} or more: there the "
        "measure cannot say how much sooner those runs converged, so a difference (or its "
        "absence) is bounded by the evaluation spacing, not measured.",
        "",
        summary.summary_table(convergence),
        "",
        *_tally(convergence),
        "## Test macro-F1 per study (mean ± std over pairs; the kept setting per variant, k)",
        "",
        *score_tables,
    ]
    (HERE / "summary.md").write_text("\n".join(text) + "\n")
    plots.plot_summary(comparisons, HERE / "summary.png")
    print((HERE / "summary.md").read_text())


if __name__ == "__main__":
    main()
