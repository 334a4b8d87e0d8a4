"""Paired validation comparison of each setting of a defaults sweep against its base setting.

    python docs/results/defaults/paired.py runs/defaults > docs/results/defaults/paired.md
    python docs/results/defaults/paired.py runs/augment/uci_har --base O_off

Pairs are (variant, k, split, seed), matched by `harjax.reporting.stats.paired_differences`;
the interval is the library's paired t interval. Only validation macro-F1 is read: these runs
choose defaults, test scores play no part.
"""

import argparse
from pathlib import Path

from harjax.reporting import stats, tables
from harjax.variants import PAIR_ON

WITHIN = ("variant", "shots")


def main(root: Path, base_name: str) -> None:
    base = tables.read_csv(root / base_name / "results.csv")
    variants = list(dict.fromkeys(r["variant"] for r in base))
    print(
        f"| setting | variant | k | mean val macro-F1 | paired difference vs {base_name} "
        "(95 % CI) | pairs |"
    )
    print("|---|---|---|---:|---|---:|")
    for directory in sorted(p for p in root.iterdir() if (p / "results.csv").exists()):
        rows = tables.read_csv(directory / "results.csv")
        tagged = [{**r, "setting": "setting"} for r in rows] + [{**r, "setting": "A"} for r in base]
        paired = stats.paired_differences(
            tagged,
            metric="val_macro_f1",
            compare="setting",
            a="setting",
            b="A",
            within=WITHIN,
            pair_on=PAIR_ON,
        )
        for variant in variants:
            for k in (5, "all"):
                found = paired.get((variant, k))
                if found is None or not found.pairs:
                    continue
                scores = {
                    tuple(r[key] for key in PAIR_ON): r["val_macro_f1"]
                    for r in rows
                    if (r["variant"], r["shots"]) == (variant, k)
                }
                mean = sum(scores[pair] for pair in found.pairs) / len(found.pairs)
                interval = stats.confidence_interval(found.differences)
                print(
                    f"| {directory.name} | {variant} | {k} | {mean:.3f} | "
                    f"{interval.mean:+.3f} ({interval.low:+.3f} to {interval.high:+.3f}) | "
                    f"{len(found.pairs)} |"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="runs/defaults")
    parser.add_argument("--base", default="A_channel", help="the setting the others pair with")
    arguments = parser.parse_args()
    main(Path(arguments.root), arguments.base)
