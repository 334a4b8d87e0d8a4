"""What a run trains and tests on: a config's dataset, opened once, with its split.

`load_data(config)` is the one place the `config.data` section (configs/default.py) is turned
into a dataset and a subject-disjoint split; training, the few-shot sweep, transfer and the
notebooks all call it, so they see the same windows.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from harjax.data import source, splits
from harjax.data.builder import Report
from harjax.data.labels import COMMON_LABELS

SPLIT_KINDS = ("subject", "official")


@dataclasses.dataclass
class DataBundle:
    """A loaded dataset with its split: what a run (or a sweep of runs) trains and tests on."""

    dataset: source.HARDataset
    split: splits.Split
    label_key: str

    @property
    def class_names(self) -> tuple[str, ...]:
        return COMMON_LABELS if self.label_key == "common_label" else self.dataset.class_names

    def targets(self, indices: np.ndarray) -> np.ndarray:
        source = self.dataset.common_labels if self.label_key == "common_label" else None
        return (self.dataset.labels if source is None else source)[indices]

    def describe(self) -> str:
        """What a run sees, for the launch scripts to print before training: the build report
        of the prepared data (what was kept, dropped and repaired), then windows, subjects and
        windows per class in each part of the split."""
        dataset, split = self.dataset, self.split
        summary = _report_summary(dataset.report)
        lines = [
            f"{dataset.name}: {len(dataset.labels)} windows of {dataset.num_channels} channels "
            f"{list(dataset.channel_names)}; build report: {summary}",
            f"split {split.kind!r} (seed {split.seed}), classes ({self.label_key}) "
            f"{list(self.class_names)}:",
        ]
        for part in ("train", "val", "test"):
            indices = getattr(split, part)
            subjects = getattr(split, f"{part}_subjects")
            counts = np.bincount(self.targets(indices), minlength=len(self.class_names))
            per_class = {name: int(n) for name, n in zip(self.class_names, counts) if n}
            lines.append(
                f"  {part}: {len(indices)} windows, {len(subjects)} subjects "
                f"{list(subjects)}; per class {per_class}"
            )
        return "\n".join(lines)


def _report_summary(report: dict) -> str:
    """The builder's one-line `Report.summary` from its stored dict (metadata of the build)."""
    fields = {f.name for f in dataclasses.fields(Report)}
    return Report(**{key: value for key, value in report.items() if key in fields}).summary()


def load_data(config: ml_collections.ConfigDict) -> DataBundle:
    """Opens `config.dataset` (preparing it once) and makes the seeded subject-disjoint split.

    With `label_key='common_label'` windows without a common label (-1) are left out of every
    part of the split, since they have no target in that label space.
    """
    data_config = config.data
    if data_config.split not in SPLIT_KINDS:
        raise ValueError(
            f"config.data.split must be one of {SPLIT_KINDS}, got {data_config.split!r}"
        )
    dataset = source.load_dataset(
        config.dataset,
        data_dir=data_config.data_dir or None,
        manual_dir=data_config.manual_dir or None,
        sample_rate=float(data_config.sample_rate),
        window_length=int(data_config.window_length),
        window_stride=int(data_config.window_stride),
        max_gap_s=float(data_config.max_gap_s),
        channels=data_config.channels,
    )
    split = splits.dataset_split(
        dataset,
        val_fraction=float(data_config.val_fraction),
        test_fraction=float(data_config.test_fraction),
        seed=int(data_config.split_seed),
        official=data_config.split == "official",
    )
    if data_config.label_key == "common_label":
        keep = lambda indices: indices[dataset.common_labels[indices] >= 0]
        split = dataclasses.replace(
            split, train=keep(split.train), val=keep(split.val), test=keep(split.test)
        )
    return DataBundle(dataset, split, data_config.label_key)
