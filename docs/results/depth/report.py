"""The depth study's table and figure: runs/k10 and runs/kall -> depth.md and depth.png here.

    python docs/results/depth/report.py

Each depth's rows are that depth's sweep with its settings chosen on validation
(`sweeps.fewshot.depth_rows`); `none` and `classical` have no backbone, so their levels are the
UCI-HAR study's (same splits, seeds and k-shot draws: `docs/results/uci_har/runs`). A sweep
not yet complete is said to be partial in depth.md: only its finished runs count.
"""

import json
from pathlib import Path

from harjax.reporting import depth, tables
from harjax.sweeps import fewshot, protocol

HERE = Path(__file__).parent
SWEEPS = (HERE / "runs" / "k10", HERE / "runs" / "kall")
REFERENCE_STUDY = HERE.parent / "uci_har" / "runs"


def main() -> None:
    rows, notes, partial = [], [], set()
    for workdir in SWEEPS:
        done = sorted(
            workdir.glob("layers*/results.md"), key=lambda path: int(path.parent.name[6:])
        )
        if not done:
            notes.append(f"- {workdir.relative_to(HERE)}: not run yet.")
            continue
        rows += fewshot.depth_rows(workdir)
        for results in done:
            finished, planned = tables.read_completeness(results)
            state = "complete" if finished == planned else "**partial**"
            where = results.parent.relative_to(HERE)
            notes.append(f"- {where}: {finished} of {planned} runs, {state}")
            if finished < planned:  # its (k, depth) rows and panel say so too
                sweep = json.loads((results.parent / "config.json").read_text())["sweep"]
                depth_kept = int(results.parent.name[len("layers") :])
                partial |= {(shots, depth_kept) for shots in sweep["shots"]}
    shots = {row["shots"] for row in rows}
    study = protocol.kept(protocol.select(tables.read_csv(REFERENCE_STUDY / "results.csv")))
    references = [r for r in study if r["shots"] in shots and r["variant"] in ("none", "classical")]
    header = [
        "UCI-HAR reduced real copy (2400/950 windows), official split; the UCI-HAR study's "
        "protocol (configs/study_depth.py); smollm2-135m (Q4_1 GGUF) keeping its first N "
        "layers. Written by `python docs/results/depth/report.py`. Compute dtype, machine and "
        "code of every run: each `runs/*/layers<N>/results.md` (all bfloat16 so far, 8 runs "
        "per program, on a 2-core AMD EPYC with avx512_bf16).",
        "",
        *notes,
        "",
    ]
    depth.write(HERE, rows, references, header_lines=header, partial=partial)
    print((HERE / "depth.md").read_text())


if __name__ == "__main__":
    main()
