"""Classify a recording with a trained run: one label per window, with its start time.

    workdir (from `launch/train.py` / a few-shot run)   recording.csv (the CSV format of
      config.json   stats.json   metrics.json             docs/data.md; `label`/`subject`
      checkpoints/<step>/best                             columns optional)
                 \\                                      /
                  `load_predictor` ----> `predict_csv` ---> [(start_s, label, confidence), ...]

The frozen backbone is re-loaded from the spec recorded in the run and checked against the
content hash stored with the checkpoint; the CSV goes through the same resampling, gap policy and
windowing as the training data, and the training split's normalisation statistics.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from harjax import train, variants
from harjax.data import signal as signal_lib
from harjax.data.datasets.csv_folder import read_csv
from harjax.data.errors import DataError
from harjax.data.normalization import Stats
from harjax.run.checkpoint import CHECKPOINT_DIR
from harjax.run.result import read_result
from harjax.run.warm_start import restore_best
from harjax.variants import assemble

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Predictor:
    config: ml_collections.ConfigDict
    assembled: assemble.Assembled
    trainable: dict
    stats: Stats
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    eval_step: Any

    def predict_windows(self, windows: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """(N, T, C) raw windows -> (N, num_classes) probabilities."""
        if len(windows) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        signal = self.stats.apply(windows.astype(np.float32))
        out = []
        for start in range(0, len(signal), batch_size):
            chunk = signal[start : start + batch_size]
            padded = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - len(chunk), 0)])
            logits = self.eval_step(self.trainable, self.assembled.frozen, {"signal": padded})
            out.append(np.asarray(jax.nn.softmax(logits["logits"]))[: len(chunk)])
        return np.concatenate(out)


def _run_dir(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.name == CHECKPOINT_DIR:
        path = path.parent
    if not (path / "config.json").exists() or not (path / CHECKPOINT_DIR).is_dir():
        raise FileNotFoundError(
            f"{path}: not a training run directory (expected config.json and {CHECKPOINT_DIR}/ "
            "written by launch/train.py or launch/fewshot.py)"
        )
    return path


def load_predictor(checkpoint: str | Path) -> Predictor:
    run = _run_dir(checkpoint)
    config = ml_collections.ConfigDict(json.loads((run / "config.json").read_text()))
    result = read_result(run)
    if result is None:
        raise FileNotFoundError(f"{run}: the run has not finished (no metrics.json)")
    if not (variants.get(result["variant"]).neural and variants.get(config.model.variant).neural):
        raise ValueError(f"{run}: the classical baseline keeps no checkpoint to predict with")
    class_names = tuple(result["class_names"])
    channel_names = tuple(result["channel_names"])
    assembled = assemble.assemble(
        config,
        num_classes=len(class_names),
        num_channels=len(channel_names),
        rng=jax.random.key(int(config.seed)),
    )
    trainable, _ = restore_best(run, assembled.trainable, assembled.backbone_hash)
    mesh = train.data_mesh(jax.devices()[:1])
    eval_step = train.make_eval_step(assembled.model, assembled.lora_config, mesh=mesh)
    stats = Stats.load(run / "stats.json")
    return Predictor(config, assembled, trainable, stats, class_names, channel_names, eval_step)


def read_recording(
    path: str | Path, channel_names: tuple[str, ...], sample_rate: float, max_gap_s: float
) -> list[tuple[float, np.ndarray]]:
    """CSV -> [(start time in s, (n, C) segment at `sample_rate`)], split at long gaps.

    Parsing and checks are the CSV-folder builder's (`csv_folder.read_csv`, label/subject
    optional). Rows with an empty cell become holes in the time axis: short holes are
    interpolated by the uniform-grid resampling, holes longer than `max_gap_s` split the
    recording. Both are logged with their counts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV file")
    table = read_csv(path, labelled=False)
    available = signal_lib.CANONICAL_CHANNELS[: table.signal.shape[1]]
    columns = signal_lib.channel_columns(available, channel_names, source=str(path))
    signal = table.signal[:, columns]
    valid = ~np.isnan(signal).any(axis=1)
    if not valid.all():
        log.warning(
            "%s: %d rows with an empty cell left out (bridged or split by time)",
            path,
            int((~valid).sum()),
        )
    timestamps, signal = table.timestamps[valid], signal[valid]
    native = signal_lib.nominal_rate(timestamps, source=str(path))
    pieces = signal_lib.split_at_gaps(timestamps, max_gap_s)
    if len(pieces) > 1:
        log.warning(
            "%s: split into %d pieces at gaps longer than %s s", path, len(pieces), max_gap_s
        )
    out = []
    for start, stop in pieces:
        if stop - start < 2:
            log.warning(
                "%s: a single sample at t=%.3f s between gaps left out",
                path,
                float(timestamps[start]),
            )
            continue
        (piece,) = signal_lib.resample_irregular(
            timestamps[start:stop], signal[start:stop], native, max_gap_s, source=str(path)
        )
        resampled = signal_lib.resample(piece, native, sample_rate).astype(np.float32)
        out.append((float(timestamps[start]), resampled))
    return out


def predict_csv(checkpoint: str | Path, csv_path: str | Path, predictor: Predictor | None = None):
    """[(start_seconds, label, confidence)] for every window of the recording."""
    predictor = load_predictor(checkpoint) if predictor is None else predictor
    data_config = predictor.config.data
    rate = float(data_config.sample_rate)
    length, stride = int(data_config.window_length), int(data_config.window_stride)
    starts, windows = [], []
    for offset, segment in read_recording(
        csv_path, predictor.channel_names, rate, float(data_config.max_gap_s)
    ):
        segment_windows = signal_lib.windows(segment, window_length=length, window_stride=stride)
        unused = len(segment) - (len(segment_windows) - 1) * stride - length
        if len(segment_windows) == 0 or unused > 0:
            log.warning(
                "%s: %.2f s at t=%.2f s not classified (shorter than a window or the tail "
                "after the last full window)",
                csv_path,
                (len(segment) if len(segment_windows) == 0 else unused) / rate,
                offset if len(segment_windows) == 0 else offset + (len(segment) - unused) / rate,
            )
        windows.append(segment_windows)
        starts.extend(offset + i * stride / rate for i in range(len(segment_windows)))
    if not starts:
        raise DataError(
            f"{csv_path}: recording is shorter than one window ({length} samples at {rate} Hz)"
        )
    probs = predictor.predict_windows(np.concatenate(windows))
    labels = probs.argmax(-1)
    return [
        (float(s), predictor.class_names[int(k)], float(p[k]))
        for s, k, p in zip(starts, labels, probs)
    ]


def export(predictor: Predictor, directory: str | Path) -> Path:
    """Merged inference weights (LoRA folded into the kernels) + a manifest to rebuild the model."""
    from harjax.run.checkpoint import export_merged

    manifest = {
        "config": predictor.config.to_dict(),
        "class_names": list(predictor.class_names),
        "channel_names": list(predictor.channel_names),
        "stats": predictor.stats.to_dict(),
        "backbone_hash": predictor.assembled.backbone_hash,
    }
    return export_merged(directory, predictor.assembled, predictor.trainable, manifest)
