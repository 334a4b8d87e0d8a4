"""A linear probe on frozen features, layer by layer: where does the LLM carry activity?

Training a projection + LoRA mixes two questions: does the frozen backbone's computation help,
or does the trainable part do all the work? The probe asks only the first. Nothing trains but
a logistic regression:

    signal (normalised with training-window statistics)
      -> ConvProjection at its seeded initialisation       the same weights for every variant
      -> backbone ('pretrained' | 'random' | 'shuffled')   `return_hidden_states`, every layer
      -> the HAR model's own readout (`HARModel._read`: final norm and pooling options)
      -> per layer: standardise + logistic regression, C chosen on the validation split

`projection-only` pools the projection's tokens without any backbone: the floor a backbone's
layers have to clear. Within a seed, variants differ only in the backbone's weights
(`variants.controls`), so a gap between `pretrained` and `shuffled` at a layer is the pretrained
weights' doing. Across `config.probe.seeds` seeds (`config.seed`, `config.seed + 1`, ...) the
projection's initialisation and the controls' draws change, so the reports give each layer an
interval over seeds and pair the variants on seed (`harjax.sweeps.probe_report`).

`run_probe(config, workdir)` writes probe.csv, probe.md and probe.png; `launch/probe.py` is its
command line and `configs/probe.py` its config (the `probe` section lives there only).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from harjax import lora, variants
from harjax.reporting import tables
from harjax.reporting.metrics import classification_metrics
from harjax.sweeps import probe_report
from harjax.sweeps.probe_report import PROJECTION_ONLY
from harjax.variants import BACKBONE_VARIANTS, assemble, build

COLUMNS = (
    "variant",
    "layer",
    "seed",
    "C",
    "val_macro_f1",
    "test_accuracy",
    "test_macro_f1",
    "num_features",
)


# ---------------------------------------------------------------------------------- config


def problems(config: ml_collections.ConfigDict) -> list[str]:
    """One line per invalid `probe` field (the rest of the config: `run.validate`)."""
    if "probe" not in config:
        return ["config has no 'probe' section; start from configs/probe.py"]
    probe = config.probe
    found = []
    names = tuple(probe.variants)
    unknown = [name for name in names if name not in BACKBONE_VARIANTS]
    if not names or unknown or len(set(names)) != len(names):
        found.append(
            f"config.probe.variants must be distinct names from {BACKBONE_VARIANTS}, found "
            f"{names!r}"
        )
    grid = tuple(probe.c_grid)
    if not grid or not all(
        isinstance(c, int | float) and not isinstance(c, bool) and c > 0 and math.isfinite(c)
        for c in grid
    ):
        found.append(f"config.probe.c_grid must be a non-empty list of numbers > 0, found {grid!r}")
    for key in ("max_iter", "batch_size", "seeds"):
        value = probe[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            found.append(f"config.probe.{key} must be an integer >= 1, found {value!r}")
    for name in (n for n in dict.fromkeys(names) if n in BACKBONE_VARIANTS):  # their checks
        found += [
            f"config.probe.variants {name!r}: {line}" for line in variants.get(name).checks(config)
        ]
    if config.model.pooling not in ("mean", "last"):
        found.append(
            f"config.model.pooling must be 'mean' or 'last', found {config.model.pooling!r}"
        )
    return found


def check_config(config: ml_collections.ConfigDict) -> None:
    """`run.validate.check_config` (backbone variant) plus the probe's own fields."""
    from harjax.run.validate import ConfigError
    from harjax.run.validate import check_config as check_run_config

    found = problems(config)
    if found:
        raise ConfigError("invalid config:\n  " + "\n  ".join(found))
    run_config = config.copy_and_resolve_references()
    with run_config.unlocked():
        run_config.model.variant = variants.REFERENCE  # the probe always needs the backbone spec
    check_run_config(run_config)


def _feature_config(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    """`config` as `assemble` should build a probe model: no LoRA, no feature standardisation
    (the probe standardises), every layer read out."""
    c = config.copy_and_resolve_references()
    with c.unlocked():
        c.model.variant = variant
        c.lora.rank = 0
        c.model.standardize_features = False
        c.model.readout_layers = ()
    return c


# -------------------------------------------------------------------------------- features


@dataclasses.dataclass
class Features:
    """Pooled features of one split: `layers[name]` (N, d_model) per readout, `labels` (N,)."""

    layers: dict[str, list[np.ndarray]]  # variant -> one (N, d_model) array per layer
    labels: np.ndarray


def seeds_of(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The probe's seeds: `config.seed`, `config.seed + 1`, ... (`config.probe.seeds` of them)."""
    return tuple(int(config.seed) + index for index in range(int(config.probe.seeds)))


def iter_models(config, bundle, backbone, seed: int):
    """(variant, (HARModel reading every layer, params)) for each variant, then projection-only.

    One variant's backbone copy at a time (a generator), so memory holds one control, not all.
    Every variant is assembled from `jax.random.key(seed)`: `assemble` draws the projection from
    it before any backbone control, so within a seed the projection is identical across
    variants, while the controls' draws (`random`, `shuffled`) follow the seed too.
    """
    num_layers = backbone.config.num_layers
    floor = None
    for variant in config.probe.variants:
        built = assemble.assemble(
            _feature_config(config, variant),
            num_classes=len(bundle.class_names),
            num_channels=bundle.dataset.num_channels,
            rng=jax.random.key(int(seed)),
            backbone=backbone,
        )
        model = built.model.clone(readout_layers=tuple(range(num_layers)))
        params = lora.merge_params(built.trainable, built.frozen)
        if floor is None:
            floor = (model.clone(backbone=None), {"projection": params["projection"]})
        yield variant, (model, params)
        del built, params
    yield PROJECTION_ONLY, floor


def extract_features(
    config: ml_collections.ConfigDict,
    bundle,
    indices: np.ndarray,
    stats,
    models,
    forwards: dict | None = None,
) -> Features:
    """Pooled features of the windows at `indices`, one jitted forward per batch and model.

    Each forward returns every layer's pooled hidden state at once (`readout_layers`), so the
    backbone runs once per batch whatever the depth. `forwards` caches the compiled programs by
    module structure; pass the same dict across seeds and variants to compile once.
    """
    from harjax.data import pipeline

    forwards = {} if forwards is None else forwards
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in models}
    labels = []
    batches = pipeline.eval_batches(
        bundle.dataset,
        indices,
        batch_size=int(config.probe.batch_size),
        stats=stats,
        label_key=bundle.label_key,
        shard_index=0,
        shard_count=1,
    )
    total = math.ceil(len(indices) / int(config.probe.batch_size))
    for batch in tqdm(batches, total=total, desc=f"features of {len(indices)} windows"):
        keep = batch["mask"] > 0
        labels.append(batch["label"][keep])
        signal = jnp.asarray(batch["signal"])
        for name, (model, params) in models.items():
            key = repr(model)
            if key not in forwards:
                forwards[key] = jax.jit(
                    lambda p, s, m=model: m.apply({"params": p}, s, return_features=True)
                )
            outputs[name].append(np.asarray(forwards[key](params, signal))[keep])
    layers = {}
    for name, (model, _) in models.items():
        pooled = np.concatenate(outputs[name]) if outputs[name] else np.zeros((0, 0), np.float32)
        count = 1 if model.backbone is None else len(model.readout_layers)
        layers[name] = np.split(pooled, count, axis=1)  # (N, L * d) -> L x (N, d), in order
    return Features(layers, np.concatenate(labels) if labels else np.zeros(0, np.int32))


# ----------------------------------------------------------------------------------- probe


def fit_probe(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str],
    *,
    c_grid: Sequence[float],
    max_iter: int,
) -> dict[str, Any]:
    """Standardised logistic regression fit on `train`, C chosen by validation macro-F1.

    Ties go to the smaller C (the stronger regularisation). The test split is scored once, by
    the chosen model, and plays no part in the choice.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    train_x, val_x, test_x = (scaler.transform(x) for x in (train[0], val[0], test[0]))
    best = None
    for c in sorted(float(c) for c in c_grid):
        classifier = LogisticRegression(C=c, max_iter=int(max_iter)).fit(train_x, train[1])
        score = classification_metrics(val[1], classifier.predict(val_x), class_names)
        if best is None or score["macro_f1"] > best[1]:
            best = (c, score["macro_f1"], classifier)
    c, val_f1, classifier = best
    tested = classification_metrics(test[1], classifier.predict(test_x), class_names)
    return {
        "C": c,
        "val_macro_f1": val_f1,
        "test_accuracy": tested["accuracy"],
        "test_macro_f1": tested["macro_f1"],
        "num_features": int(train[0].shape[1]),
    }


# ------------------------------------------------------------------------------------- run


def probe_rows(config, bundle, stats, backbone, seed: int, forwards: dict) -> list[tables.Row]:
    """The rows of one seed: every variant's layers, then projection-only.

    Features are extracted and probed one variant at a time, so memory holds one variant's
    (layers x windows x d_model) floats for the three splits, never all variants'.
    """
    split = bundle.split
    rows = []
    for name, pair in iter_models(config, bundle, backbone, seed):
        features = {
            part: extract_features(
                config, bundle, getattr(split, part), stats, {name: pair}, forwards
            )
            for part in ("train", "val", "test")
        }
        for layer, _ in enumerate(features["train"].layers[name]):
            train, val, test = (
                (features[part].layers[name][layer], features[part].labels)
                for part in ("train", "val", "test")
            )
            scores = fit_probe(
                train,
                val,
                test,
                bundle.class_names,
                c_grid=tuple(config.probe.c_grid),
                max_iter=int(config.probe.max_iter),
            )
            layer_name = None if name == PROJECTION_ONLY else layer
            rows.append({"variant": name, "layer": layer_name, "seed": int(seed), **scores})
        del features
    return rows


def resumed_rows(config, bundle, workdir: Path, *, overwrite: bool = False) -> list[tables.Row]:
    """The rows of the seeds an earlier run of this same probe finished in `workdir`.

    probe.csv is rewritten after every seed, and `fingerprint.json` records what the probe is
    (`run.fingerprint`: config, data, backbone content, compute dtype; `probe.seeds` left out,
    so asking for more seeds resumes). A workdir holding another probe is an error unless
    `overwrite`, which starts afresh; a probe.csv without a fingerprint (older harjax) is
    replaced.
    """
    from harjax.run import fingerprint as fingerprints

    identity = config.copy_and_resolve_references()
    with identity.unlocked():
        identity.probe.seeds = 0
    expected = fingerprints.fingerprint(
        identity, bundle, bundle.split.train, tags={"sweep": "probe"}
    )
    recorded, path = fingerprints.recorded(workdir), workdir / "probe.csv"
    rows = []
    if recorded is not None and path.exists() and not overwrite:
        if not fingerprints.matches(recorded, expected):
            shown = "; ".join(fingerprints.differences(recorded, expected)[:6])
            raise fingerprints.StaleRunError(
                f"{workdir} holds a probe of another configuration ({shown}); use a new "
                "--workdir, or pass --overwrite to start afresh"
            )
        wanted = set(seeds_of(config))
        rows = [row for row in tables.read_csv(path, required=COLUMNS) if row["seed"] in wanted]
    fingerprints.record(workdir, expected)
    return rows


def run_probe(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    backbone=None,
    overwrite: bool = False,
):
    """Features, probes and reports for `config`; returns the rows (also in probe.csv).

    Resumable: seeds already in WORKDIR/probe.csv from the same probe are kept, not rerun
    (`resumed_rows`). `backbone` may be a pre-loaded `harjax.weights.Backbone` (else
    `config.backbone.spec`).
    """
    from harjax.data.bundle import load_data
    from harjax.data.normalization import compute_stats
    from harjax.run import code_version, environment

    check_config(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = load_data(config)
    split = bundle.split
    for name in ("train", "val", "test"):
        if len(getattr(split, name)) == 0:
            raise ValueError(f"probe: the {name} split of {config.dataset!r} has no windows")
    if backbone is None:
        backbone = variants.load_backbone(
            variants.backbone_source(_feature_config(config, variants.REFERENCE))
        )
    stats = compute_stats(bundle.dataset, split.train)
    forwards: dict = {}
    rows = resumed_rows(config, bundle, workdir, overwrite=overwrite)
    done = {row["seed"] for row in rows}
    for seed in seeds_of(config):
        if seed in done:
            print(f"probe: seed {seed} already in {workdir / 'probe.csv'}, kept", flush=True)
            continue
        rows += probe_rows(config, bundle, stats, backbone, seed, forwards)
        rows.sort(key=lambda row: seeds_of(config).index(row["seed"]))  # stable: seed order
        tables.write_csv(rows, workdir / "probe.csv", COLUMNS)  # finished seeds, as they come
    dtype = build.resolve_compute_dtype(str(config.backbone.dtype))["name"]
    readout = (
        f"pooling {config.model.pooling}, final norm {bool(config.model.final_norm)}, "
        f"skip first token {bool(config.model.skip_first_token)}"
    )
    seeds = seeds_of(config)
    header = [
        f"Dataset {config.dataset!r}, split {config.data.split!r} (split seed "
        f"{config.data.split_seed}; {len(split.train)} train / "
        f"{len(split.val)} val / {len(split.test)} test windows, subject-disjoint), backbone "
        f"{backbone.spec!r} at depth {backbone.config.num_layers} (layers 0 to "
        f"{backbone.config.num_layers - 1}), compute dtype {dtype}; {len(seeds)} seed"
        f"{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); {readout}.",
        "Per seed: the projection at its seeded initialisation (the same weights for every "
        "variant of that seed) and the controls' draws from that seed; nothing trained but a "
        "standardised logistic regression per (variant, layer, seed), its C chosen from "
        f"{tuple(config.probe.c_grid)} by validation macro-F1, and so is each variant's best "
        "layer per seed. Test is scored once, by the chosen model.",
        "",
        # Of this invocation: seeds resumed from probe.csv passed the same fingerprint check.
        f"Machine: {environment.describe(environment.environment())}",
        f"Code: {code_version.describe(code_version.code_version())}",
    ]
    (workdir / "probe.md").write_text(probe_report.markdown(rows, header))
    probe_report.plot(
        rows,
        workdir / "probe.png",
        f"Linear probe per layer: {config.dataset}, {backbone.spec}, {len(seeds)} seeds",
    )
    return rows
