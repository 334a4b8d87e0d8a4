"""Preparing, reading and batching never imports TensorFlow (it is not even a dependency)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])  # the repository, for `tests.data.defaults`

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from harjax.data import normalization, pipeline, sampling, source, splits
    from tests.data.defaults import dataset_options

    folder, data_dir = sys.argv[1], sys.argv[2]
    for subject in range(3):
        lines = ["timestamp,acc_x,acc_y,acc_z,label,subject"]
        for i in range(400):
            lines.append(f"{i / 50:.3f},{np.sin(i / 5):.4f},0,9.81,walk,p{subject}")
        with open(f"{folder}/p{subject}.csv", "w") as f:
            f.write("\\n".join(lines) + "\\n")
    counts = {}
    for spec in ("smartwatch", "csv:" + folder):
        ds = source.load_dataset(spec, data_dir=data_dir, **dataset_options())
        split = splits.dataset_split(
            ds, val_fraction=0.34, test_fraction=0.34, seed=0, official=True
        )
        stats = normalization.compute_stats(ds, split.train)
        shots = sampling.k_shot(ds.labels, split.train, 1, 0, ds.class_names)
        batch = next(pipeline.train_batches(ds, shots, batch_size=8, seed=0, stats=stats))
        evals = list(pipeline.eval_batches(ds, split.test, batch_size=8, stats=stats))
        counts[spec.split(":")[0]] = [len(ds), batch["signal"].shape[0], len(evals)]
    loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print(json.dumps({"tensorflow_modules": loaded, "counts": counts}))
    """
)


def test_pipeline_never_imports_tensorflow(tmp_path, tmp_path_factory):
    folder = tmp_path / "csv"
    folder.mkdir()
    env = dict(
        os.environ,
        HARJAX_CACHE=str(tmp_path_factory.getbasetemp() / "harjax_cache"),
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "tfds")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow_modules"] == []
    assert report["counts"]["smartwatch"][:2] == [3605, 8]
    assert report["counts"]["csv"][0] == 3 * (1 + (400 - 128) // 64)
