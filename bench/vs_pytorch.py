"""harjax vs PyTorch + PEFT: full LoRA train steps on the same model, timed side by side.

Same backbone architecture (HF `LlamaModel`/`GPT2Model` with random weights in PyTorch, the
harjax Flax twin), the same projection and head, LoRA targets and rank, batch, threads; forward,
backward and AdamW. PyTorch runs in float32 and with `torch.autocast("cpu", bfloat16)`; each
variant lives in its own process and steps alternate A B C A B C (see `bench.common`).

    python -m bench.vs_pytorch [--shapes smollm2,gpt2] [--layers N] [--repeats 7]
                               [--harjax-dtypes float32,bfloat16] [--json out.json]
"""

from __future__ import annotations

import argparse

from bench import common
from bench.common import Variant


def variants_for(
    shape: str, layers: int, batch: int, tokens: int, rank: int, harjax_dtypes: list[str]
) -> list[Variant]:
    base = dict(shape=shape, layers=layers, batch=batch, tokens=tokens, rank=rank)
    out = []
    for dtype in harjax_dtypes:
        if dtype == "bfloat16-plain":  # before harjax.models.matmul: bf16 -> bf16 dots
            out.append(Variant(f"harjax-{dtype}", dtype="bfloat16", matmul="plain", **base))
        else:
            out.append(Variant(f"harjax-{dtype}", dtype=dtype, **base))
    out.append(Variant("pytorch-float32", framework="torch", dtype="float32", **base))
    out.append(Variant("pytorch-bf16-autocast", framework="torch", dtype="bfloat16", **base))
    return out


def run(
    shapes: list[str],
    layers: int | None,
    batch: int,
    tokens: int,
    rank: int,
    repeats: int,
    harjax_dtypes: list[str],
) -> dict:
    results = {"machine": common.machine_info(), "shapes": {}}
    for shape in shapes:
        n = layers or common.DEFAULT_LAYERS[shape]
        variants = variants_for(shape, n, batch, tokens, rank, harjax_dtypes)
        print(f"{shape}: {n} layers, batch {batch} x {tokens} tokens, LoRA rank {rank}", flush=True)
        timed = common.alternate(variants, repeats)
        torch32 = timed["pytorch-float32"]["median"]
        torch16 = timed["pytorch-bf16-autocast"]["median"]
        rows = []
        for name, entry in timed.items():
            median = entry["median"]
            rows.append(
                [
                    name,
                    f"{1000 * median:.0f}",
                    f"{1000 * min(entry['times']):.0f}",
                    f"{torch32 / median:.2f}x",
                    f"{torch16 / median:.2f}x",
                ]
            )
        print(
            common.markdown_table(
                ["variant", "median ms", "min ms", "speed vs pt-f32", "speed vs pt-bf16"], rows
            ),
            flush=True,
        )
        results["shapes"][shape] = {"layers": n, "timed": timed}
    results["load_after"] = common.load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="smollm2,gpt2")
    parser.add_argument("--layers", type=int, default=None, help="default: 8 smollm2, 6 gpt2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per variant")
    parser.add_argument(
        "--harjax-dtypes", default="float32,bfloat16", help="also: bfloat16-plain (before/after)"
    )
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    results = run(
        args.shapes.split(","),
        args.layers,
        args.batch,
        args.tokens,
        args.rank,
        args.repeats,
        args.harjax_dtypes.split(","),
    )
    common.write_json(args.json, results)


if __name__ == "__main__":
    main()
