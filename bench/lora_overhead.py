"""LoRA overhead: a train step with adapters vs. the frozen forward + backward without them.

Both variants train the same projection and head, so both run the whole backbone backward (to
reach the projection); the difference is the adapters' own matmuls, their gradients, their
AdamW update and how well XLA fuses the extra path. Target: <= 5 %.

    python -m bench.lora_overhead [--shape smollm2] [--layers 8] [--dtypes float32,bfloat16]
"""

from __future__ import annotations

import argparse

from bench import common
from bench.common import Variant


def run(shape: str, layers: int, rank: int, repeats: int, dtypes: list[str]) -> dict:
    variants = []
    for dtype in dtypes:
        base = dict(shape=shape, layers=layers, dtype=dtype)
        variants.append(Variant(f"lora-r{rank}-{dtype}", rank=rank, **base))
        variants.append(Variant(f"frozen-{dtype}", rank=0, **base))
    print(f"{shape}: {layers} layers, LoRA rank {rank} vs none", flush=True)
    timed = common.alternate(variants, repeats)
    rows = []
    for dtype in dtypes:
        with_lora = timed[f"lora-r{rank}-{dtype}"]["median"]
        frozen = timed[f"frozen-{dtype}"]["median"]
        flops_lora = common.matmul_flops(Variant("", shape=shape, layers=layers, rank=rank))
        flops_frozen = common.matmul_flops(Variant("", shape=shape, layers=layers, rank=0))
        rows.append(
            [
                dtype,
                f"{1000 * frozen:.0f}",
                f"{1000 * with_lora:.0f}",
                f"{100 * (with_lora / frozen - 1):+.1f} %",
                f"{100 * (flops_lora['total'] / flops_frozen['total'] - 1):+.1f} %",
            ]
        )
    headers = ["dtype", "frozen fwd+bwd ms", f"LoRA r{rank} ms", "overhead", "FLOP overhead"]
    print(common.markdown_table(headers, rows), flush=True)
    return {
        "timed": timed,
        "table": {"headers": headers, "rows": rows},
        "shape": shape,
        "layers": layers,
        "load_after": common.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="smollm2")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    common.write_json(
        args.json, run(args.shape, args.layers, args.rank, args.repeats, args.dtypes.split(","))
    )


if __name__ == "__main__":
    main()
