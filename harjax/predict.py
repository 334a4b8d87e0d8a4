"""Classify a recording with a trained run: one label per window, with its start time.

    workdir (from `launch/train.py` / a few-shot run)   recording.csv (the CSV format of
      config.json   stats.json   metrics.json             docs/data.md; `label`/`subject`
      checkpoints/<step>/best                             columns optional)
                 \\                                      /
                  `load_predictor` ----> `predict_csv` ---> [(start_s, label, confidence), ...]

The frozen backbone is re-loaded from the spec recorded in the run and checked against the
content hash stored with the checkpoint. The CSV is read the way training reads a `csv:` folder
(`csv_folder.read_csv` and `csv_folder.table_recordings`: the same checks, rate inference and
irregular-grid interpolation), then gap-filled and resampled with the builder's steps
(`signal.fill_gaps`, `signal.resample`), windowed like the training data and normalised with
the training windows' statistics (`stats.json`).
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
from harjax.data.builder import Report
from harjax.data.datasets.csv_folder import read_csv, table_recordings
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
        raise ValueError(
            f"{run}: variant {result['variant']!r} is a fitted baseline, not a network; it keeps "
            "no checkpoint to predict with"
        )
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

    The path training takes for a `csv:` folder, without labels: `csv_folder.read_csv`
    (`label`/`subject` optional and ignored here, so the whole file is one recording),
    `csv_folder.table_recordings` (a file off a uniform grid is interpolated onto one; rows with
    an empty cell then become holes in time), then per recording the builder's
    `signal.fill_gaps` (holes up to `max_gap_s` interpolated, longer ones and the edges cut)
    and `signal.resample` to `sample_rate`. What was dropped or interpolated is logged as one
    warning line, like a dataset build.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CSV file")
    table = read_csv(path, labelled=False)
    available = signal_lib.CANONICAL_CHANNELS[: table.signal.shape[1]]
    columns = signal_lib.channel_columns(available, channel_names, source=str(path))
    unlabelled = np.full(len(table.timestamps), "")
    table = dataclasses.replace(
        table, signal=table.signal[:, columns], labels=unlabelled, subjects=unlabelled
    )
    report = Report()
    out = []
    for start_s, recording in table_recordings(
        table, tuple(channel_names), sample_rate=None, max_gap_s=max_gap_s, report=report
    ):
        native = recording.sample_rate
        pieces, gaps = signal_lib.fill_gaps(
            recording.signal,
            max_gap_samples=int(round(max_gap_s * native)),
            source=recording.source,
        )
        report.add_gaps(gaps)
        for offset, piece in zip(gaps.segment_starts, pieces, strict=True):
            resampled = signal_lib.resample(piece, native, sample_rate).astype(np.float32)
            out.append((start_s + offset / native, resampled))
    if report.samples_interpolated or report.samples_dropped_in_gaps or report.rows_dropped:
        dropped = {reason: sum(files.values()) for reason, files in report.rows_dropped.items()}
        log.warning(
            "%s: interpolated %d samples in %d gaps; dropped %d samples in long or edge gaps; "
            "rows dropped %s; %d pieces",
            path,
            report.samples_interpolated,
            report.gaps_interpolated,
            report.samples_dropped_in_gaps,
            dropped,
            len(out),
        )
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
