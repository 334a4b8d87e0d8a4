#!/usr/bin/env bash
# The accelerator check as one call on a lent GPU machine (docs/performance.md, "GPU").
#
#   bash bench/gpu_session.sh prepare   # here, venv active, once: what the image lacks -> .whl/ .devcache/
#   bash bench/gpu_session.sh run       # there, one call, carry [".whl", ".devcache"]; ~8 min max
#
# The device image (Python 3.12) has jax, flax, optax, orbax, torch, peft and transformers but
# not ml_collections, gguf, grain, array_record or tensorflow-datasets (and a few of their
# needs): `prepare` downloads them as cp312 wheels into .whl/ and copies the smartwatch recording
# file (the sweep benchmark's data; the device cannot reach the package index) into
# .devcache/, the HARJAX_CACHE the run points at. Both folders are git-ignored via
# .git/info/exclude. `run` writes env.txt, gpu.txt, sweep_auto.txt/json and sweep_f32.txt/json
# under $OUT, each part under its own timeout so one failure does not lose the others.
set -euo pipefail

case "${1:-}" in
prepare)
    exclude="$(git rev-parse --git-path info/exclude)"
    mkdir -p "$(dirname "$exclude")" .whl
    for path in /.whl/ /.devcache/; do grep -qx "$path" "$exclude" 2>/dev/null || echo "$path" >>"$exclude"; done
    platforms=()
    for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014; do
        platforms+=(--platform "${tag}_x86_64")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d .whl \
        ml_collections==1.1.0 gguf==0.19.0 grain==0.2.18 array_record==0.8.6 \
        tensorflow-datasets==4.9.10 tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 \
        immutabledict==4.3.1 tensorboardX==2.6.5 toml==0.10.2 dm-tree==0.1.10 \
        simple-parsing==0.1.9 docstring-parser termcolor==3.3.0 portpicker
    # promise (a tensorflow-datasets need) is published as an sdist only: build its pure wheel.
    python3 -m pip wheel -q --no-deps promise==2.3 -w .whl
    member=seglearn-1.2.5/seglearn/data/watch_dataset.npy
    python3 -c "from harjax.weights.assets import fetch_wheel_member as f; \
print(f('seglearn', '1.2.5', 'seglearn/data/watch_dataset.npy'))" >/dev/null
    mkdir -p ".devcache/wheels/$(dirname "$member")"
    cp "${HARJAX_CACHE:-$HOME/.cache/harjax}/wheels/$member" ".devcache/wheels/$member"
    du -sh .whl .devcache
    ;;
run)
    : "${OUT:?run this on the device machine, where OUT is set}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" HARJAX_CACHE="$PWD/.devcache" HARJAX_DATA_DIR=/tmp/tfds
    export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
    set +e
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        python3 -c "import jax, flax, optax, numpy, torch, peft; print('jax', jax.__version__, \
'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, \
'torch', torch.__version__, 'peft', peft.__version__, jax.devices())"
        lscpu | grep 'Model name'
        nproc
    } 2>&1 | tee "$OUT/env.txt"
    timeout 230 python3 -m bench.gpu 2>&1 | tee "$OUT/gpu.txt"
    timeout 150 python3 -m bench.sweep_throughput --json "$OUT/sweep_auto.json" 2>&1 \
        | grep -v -E 'examples/s|it/s' | tee "$OUT/sweep_auto.txt"
    timeout 110 python3 -m bench.sweep_throughput --dtype float32 --json "$OUT/sweep_f32.json" \
        2>&1 | grep -v -E 'examples/s|it/s' | tee "$OUT/sweep_f32.txt"
    ;;
*)
    echo "usage: bash bench/gpu_session.sh prepare|run" >&2
    exit 2
    ;;
esac
