"""The one logging path: JSONL (machine-readable) + TensorBoard event files, process 0 only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harjax.run.environment import is_main_process


class MetricsLog:
    """Appends `{"step": s, "split": name, **scalars}` lines to `workdir/metrics.jsonl` and writes
    the same scalars as TensorBoard events under `workdir/tensorboard/`.

    On resume the JSONL file is truncated to the steps up to the restored checkpoint, so a run
    killed and resumed logs every step exactly once.
    """

    def __init__(self, workdir: str | os.PathLike, *, resume_step: int = 0, enabled: bool = True):
        self.enabled = enabled and is_main_process()
        self.path = Path(workdir) / "metrics.jsonl"
        self._tb = None
        if not self.enabled:
            return
        if self.path.exists():
            keep = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in keep))
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

    def write(self, step: int, split: str, scalars: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in scalars.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        for key, value in clean.items():
            self._tb.add_scalar(f"{split}/{key}", value, int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
