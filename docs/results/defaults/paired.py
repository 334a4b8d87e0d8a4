"""Paired validation comparison of each setting of run.sh against A_channel.

    python docs/results/defaults/paired.py runs/defaults > docs/results/defaults/paired.md

Pairs are (variant, k, split, seed); the interval is the library's paired t interval. Only
validation macro-F1 is read: these runs choose defaults, test scores play no part.
"""

import csv
import sys
from pathlib import Path

from harjax.reporting.stats import confidence_interval


def load(directory: Path) -> dict:
    with open(directory / "results.csv") as file:
        rows = list(csv.DictReader(file))
    return {(r["variant"], r["shots"], r["split_seed"], r["seed"]): r for r in rows}


def main(root: Path) -> None:
    base = load(root / "A_channel")
    print(
        "| setting | variant | k | mean val macro-F1 | paired difference vs A (95 % CI) | pairs |"
    )
    print("|---|---|---|---:|---|---:|")
    for directory in sorted(p for p in root.iterdir() if (p / "results.csv").exists()):
        rows = load(directory)
        for variant in ("pretrained", "none"):
            for k in ("5", "all"):
                keys = [key for key in rows if key[:2] == (variant, k) and key in base]
                if not keys:
                    continue
                scores = [float(rows[key]["val_macro_f1"]) for key in keys]
                differences = [s - float(base[key]["val_macro_f1"]) for s, key in zip(scores, keys)]
                interval = confidence_interval(differences)
                print(
                    f"| {directory.name} | {variant} | {k} | {sum(scores) / len(scores):.3f} | "
                    f"{interval.mean:+.3f} ({interval.low:+.3f} to {interval.high:+.3f}) | "
                    f"{len(keys)} |"
                )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/defaults"))
