"""Cross-dataset folds: which datasets pre-train and which one is the target, and the fold's
label space.

A fold is (sources -> target). Labels are `common_label` (COMMON_LABELS); windows whose activity
has no common equivalent are dropped and counted. The fold's class list is the common labels
present in BOTH the sources' training windows and the target's training windows (the k-shot
pool), in COMMON_LABELS order; windows of any other class are dropped and counted too, so every
run of a fold predicts exactly these classes. `plan_folds(leave_one_out=...)` is harjax's one
leave-one-dataset-out.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from harjax import variants
from harjax.data import splits
from harjax.data.bundle import DataBundle, load_data
from harjax.data.concat import concat_datasets
from harjax.data.labels import COMMON_LABELS
from harjax.sweeps.core import slug

# Variants whose trainable tree can move between datasets on one fixed frozen backbone
# (`Variant.transferable`): `random` draws its frozen weights from the run seed, so seeds would
# not share a backbone; `classical` has no trainable tree.
TRANSFER_VARIANTS = variants.TRANSFER_VARIANTS


@dataclasses.dataclass(frozen=True)
class Fold:
    """Pre-train on `sources`, transfer to `target`."""

    sources: tuple[str, ...]
    target: str

    @property
    def source(self) -> str:
        return ",".join(self.sources)

    @property
    def name(self) -> str:
        short = lambda name: slug(name).strip("_")
        return f"{'+'.join(short(s) for s in self.sources)}-to-{short(self.target)}"


@dataclasses.dataclass
class FoldData:
    """A fold's two data bundles, both in the fold's label space (`classes`)."""

    fold: Fold
    classes: tuple[str, ...]
    source: DataBundle
    target: DataBundle
    info: dict[str, Any]  # written to fold.json and results.md


def parse_names(text: str, flag: str) -> list[str]:
    """'uci_har,hhar' -> ['uci_har', 'hhar']; duplicates are an error."""
    names = [part.strip() for part in str(text or "").split(",") if part.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"--{flag}: a dataset is listed twice in {names}")
    return names


def plan_folds(
    sources: Sequence[str] = (), target: str = "", leave_one_out: Sequence[str] = ()
) -> list[Fold]:
    """Either one fold (sources -> target) or one fold per dataset of `leave_one_out`."""
    sources, leave_one_out = list(sources), list(leave_one_out)
    if leave_one_out:
        if sources or target:
            raise ValueError(
                "--leave-one-dataset-out chooses sources and targets itself; do not combine it "
                f"with --source ({sources}) or --target ({target!r})"
            )
        if len(set(leave_one_out)) != len(leave_one_out) or len(leave_one_out) < 2:
            raise ValueError(
                f"--leave-one-dataset-out needs >= 2 distinct datasets, found {leave_one_out}"
            )
        return [
            Fold(tuple(n for n in leave_one_out if n != held_out), held_out)
            for held_out in leave_one_out
        ]
    if not sources or not target:
        raise ValueError(
            f"give --source (found {sources}) and --target (found {target!r}), or "
            "--leave-one-dataset-out"
        )
    if target in sources:
        raise ValueError(f"--target {target!r} is also listed in --source {sources}")
    return [Fold(tuple(sources), target)]


def check_config(config: ml_collections.ConfigDict) -> None:
    if config.data.label_key != "common_label":
        raise ValueError(
            "transfer works in the common label space: config.data.label_key must be "
            f"'common_label', found {config.data.label_key!r}"
        )
    if config.model.variant not in TRANSFER_VARIANTS:
        raise ValueError(
            f"transfer: config.model.variant must be one of {TRANSFER_VARIANTS}, found "
            f"{config.model.variant!r} ('random' draws its frozen weights from the run seed, "
            "'classical' has no trainable tree to transfer)"
        )


def restrict_labels(ds, classes: Sequence[str]):
    """A copy of `ds` whose `labels`/`class_names` are `classes` (a subset of COMMON_LABELS):
    label = index of the window's common label in `classes`, -1 when it is not there."""
    lookup = np.full(len(COMMON_LABELS) + 1, -1, np.int64)  # last slot: common label -1
    for index, name in enumerate(classes):
        lookup[COMMON_LABELS.index(name)] = index
    return dataclasses.replace(ds, labels=lookup[ds.common_labels], class_names=tuple(classes))


def _shift(bundles: Sequence[DataBundle], offsets: np.ndarray) -> splits.Split:
    """The sources' own splits, concatenated with each part's index offset."""
    part = lambda name: np.concatenate(
        [getattr(b.split, name) + offsets[i] for i, b in enumerate(bundles)]
    ).astype(np.int64)
    names = lambda name: tuple(
        f"{b.dataset.name}/{s}" for b in bundles for s in getattr(b.split, f"{name}_subjects")
    )
    return splits.Split(
        train=part("train"),
        val=part("val"),
        test=part("test"),
        train_subjects=names("train"),
        val_subjects=names("val"),
        test_subjects=names("test"),
        seed=bundles[0].split.seed,
        kind="+".join(sorted({b.split.kind for b in bundles})),
    )


def _keep(split: splits.Split, labels: np.ndarray) -> tuple[splits.Split, int]:
    """The split without windows outside the label space (-1), and how many were dropped."""
    kept = {name: getattr(split, name) for name in ("train", "val", "test")}
    kept = {name: idx[labels[idx] >= 0] for name, idx in kept.items()}
    dropped = sum(len(getattr(split, name)) - len(idx) for name, idx in kept.items())
    return dataclasses.replace(split, **kept), dropped


def _present(common_labels: np.ndarray, indices: np.ndarray) -> set[str]:
    return {COMMON_LABELS[i] for i in np.unique(common_labels[indices]) if i >= 0}


def prepare_fold(fold: Fold, bundles: dict[str, DataBundle]) -> FoldData:
    """Concatenates the sources, finds the shared label space, restricts both sides to it.

    `bundles` come from `load_data` with label_key 'common_label' (windows without
    a common label already left out of the split and counted here).
    """
    source_bundles = [bundles[name] for name in fold.sources]
    target_bundle = bundles[fold.target]
    concat = concat_datasets([b.dataset for b in source_bundles])
    source_split = _shift(source_bundles, concat.offsets)
    source_labels = _present(concat.common_labels, source_split.train)
    target_labels = _present(target_bundle.dataset.common_labels, target_bundle.split.train)
    classes = tuple(c for c in COMMON_LABELS if c in source_labels and c in target_labels)
    if len(classes) < 2:
        raise ValueError(
            f"transfer {fold.source} -> {fold.target}: the sources' training windows have "
            f"common labels {sorted(source_labels)}, the target's {sorted(target_labels)}; "
            f"shared: {list(classes)} — at least 2 shared common labels are needed"
        )
    source_ds = restrict_labels(concat, classes)
    target_ds = restrict_labels(target_bundle.dataset, classes)
    source_split, source_outside = _keep(source_split, source_ds.labels)
    target_split, target_outside = _keep(target_bundle.split, target_ds.labels)
    no_common = {
        name: int((bundles[name].dataset.common_labels < 0).sum())
        for name in (*fold.sources, fold.target)
    }
    info = {
        "source": fold.source,
        "target": fold.target,
        "classes": list(classes),
        "source_common_labels": sorted(source_labels, key=COMMON_LABELS.index),
        "target_common_labels": sorted(target_labels, key=COMMON_LABELS.index),
        "dropped_no_common_label": no_common,
        "dropped_outside_shared_labels": {"source": source_outside, "target": target_outside},
        "source_split": source_split.to_dict(),
        "target_split": target_split.to_dict(),
    }
    return FoldData(
        fold=fold,
        classes=classes,
        source=DataBundle(source_ds, source_split, "label"),
        target=DataBundle(target_ds, target_split, "label"),
        info=info,
    )


def load_bundles(config: ml_collections.ConfigDict, names: Sequence[str]) -> dict[str, DataBundle]:
    """Each dataset opened and split once (same rate, window and channels for all)."""
    bundles = {}
    for name in names:
        dataset_config = copy.deepcopy(config)
        dataset_config.dataset = name
        bundles[name] = load_data(dataset_config)
    channels = {name: tuple(b.dataset.channel_names) for name, b in bundles.items()}
    if len(set(channels.values())) > 1:
        raise ValueError(
            f"transfer: datasets serve different channels {channels}; pass --channels acc "
            "(config.data.channels='acc') to use the accelerometer only"
        )
    return bundles
