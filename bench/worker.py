"""A benchmark worker process: builds one `Variant`, warms it up, then times steps on request.

Protocol (line based, on stdin/stdout): it prints `READY {json}` once built and warmed up, then
answers each `STEP` with `TIME {"seconds": s}`; `QUIT` ends it. See `bench.common.Worker`.
"""

from __future__ import annotations

import json
import sys
import time

from bench.common import Variant, num_cores


def main(spec: str, warmup: int) -> None:
    variant = Variant(**json.loads(spec))
    threads = variant.threads or num_cores()
    start = time.perf_counter()
    if variant.framework == "torch":
        import torch

        torch.set_num_threads(threads)
        from bench.torch_twin import build_torch

        built = build_torch(variant)
    elif variant.framework == "harjax":
        from bench.common import build_harjax

        built = build_harjax(variant)
    else:
        raise ValueError(f"unknown framework {variant.framework!r}; expected 'harjax' or 'torch'")
    build_s = time.perf_counter() - start
    step = built["step"]
    start = time.perf_counter()
    step()  # compiles (harjax) / allocates (torch)
    first_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    print("READY " + json.dumps({"build_s": build_s, "first_step_s": first_s}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "QUIT":
            return
        if command != "STEP":
            raise ValueError(f"bench.worker: expected STEP or QUIT on stdin, got {command!r}")
        start = time.perf_counter()
        step()
        print("TIME " + json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
