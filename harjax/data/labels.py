"""The common activity label space shared by all datasets, for cross-dataset transfer.

Each dataset keeps its own labels (the tfds `label` feature); `common_label` maps them into
`COMMON_LABELS` so that a model trained on one dataset can be evaluated on another. Activities
without a clear equivalent map to `None` (stored as -1) rather than to a near miss: a wrong
common label silently corrupts a transfer result, a missing one is only counted.
"""

from __future__ import annotations

from collections.abc import Mapping

# Order is part of the on-disk format (common_label is an index into it): append, never reorder.
COMMON_LABELS: tuple[str, ...] = (
    "walk",
    "upstairs",
    "downstairs",
    "sit",
    "stand",
    "lie",
    "run",
    "bike",
    "jump",
)

NO_COMMON_LABEL = -1

# dataset name (the builder's tfds name, e.g. "uci_har") -> {own label -> common label or None}.
# Filled by each builder module at import time through `register_label_map`.
DATASET_LABEL_MAP: dict[str, dict[str, str | None]] = {}


def register_label_map(dataset: str, mapping: Mapping[str, str | None]) -> dict[str, str | None]:
    """Validates and registers one dataset's label map; returns it (so modules can keep a name).

    Registering the same map twice is allowed (module reloads); a different map is an error, so
    two modules can never disagree silently about one dataset.
    """
    mapping = dict(mapping)
    bad = {own: common for own, common in mapping.items() if common is not None}
    bad = {own: common for own, common in bad.items() if common not in COMMON_LABELS}
    if bad:
        raise ValueError(
            f"label map of {dataset!r}: common labels {sorted(set(bad.values()))} (for "
            f"{sorted(bad)}) are not in COMMON_LABELS={COMMON_LABELS}"
        )
    previous = DATASET_LABEL_MAP.get(dataset)
    if previous is not None and previous != mapping:
        raise ValueError(
            f"label map of {dataset!r} registered twice with different contents: "
            f"{previous} vs {mapping}"
        )
    DATASET_LABEL_MAP[dataset] = mapping
    return mapping


def common_label_index(mapping: Mapping[str, str | None], label: str, *, dataset: str = "") -> int:
    """Index of `label`'s common equivalent in COMMON_LABELS, or -1 when it has none."""
    if label not in mapping:
        raise ValueError(
            f"label map of {dataset or 'dataset'}: no entry for activity {label!r}; "
            f"known activities: {sorted(mapping)}"
        )
    common = mapping[label]
    return NO_COMMON_LABEL if common is None else COMMON_LABELS.index(common)


def identity_map(class_names: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Maps names that already are common labels to themselves, anything else to None.

    Used for datasets whose labels come from the user (CSV folders): `walk` means walk.
    """
    return {name: (name if name in COMMON_LABELS else None) for name in class_names}


def label_map_markdown(datasets: list[str] | None = None) -> str:
    """The per-dataset mapping as a Markdown table (for docs/data.md and the README)."""
    datasets = sorted(DATASET_LABEL_MAP) if datasets is None else datasets
    lines = ["| dataset | own label | common label |", "|---|---|---|"]
    for dataset in datasets:
        for own, common in DATASET_LABEL_MAP[dataset].items():
            lines.append(f"| {dataset} | {own} | {common if common is not None else '-'} |")
    return "\n".join(lines)
