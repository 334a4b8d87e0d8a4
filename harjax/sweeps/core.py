"""What every sweep shares: shots, planned runs, run directories, fingerprints checked before
anything trains, the backbone and compiled-step caches, progress, and the rows of the runs.

A sweep (few-shot, transfer, ...) turns its command into a list of `PlannedRun`s — a run
directory, the run's config, its data and training windows, and the `tags` that become its
row — and hands them to a `Sweep`, which checks them all, runs the unfinished ones in order and
reads the rows back from the run directories (the source of truth: an interrupted and an
uninterrupted sweep end with the same table). Tables describe the runs of the current command
only; other finished runs found in the workdir are listed apart.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from harjax import variants
from harjax.data.bundle import DataBundle
from harjax.data.sampling import ALL
from harjax.run import fingerprint as fingerprints
from harjax.run import lock
from harjax.run.code_version import mixed_code_lines
from harjax.run.compiled import StepCache
from harjax.run.environment import describe, is_main_process
from harjax.run.loop import train_and_evaluate, train_group
from harjax.run.program import group_key
from harjax.run.result import RESULT_FILE, read_result, write_json
from harjax.run.validate import ConfigError, problems
from harjax.run.warm_start import InitTrainable


def slug(text: str) -> str:
    """A directory-name-safe spelling of a row name."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def check_configs(
    configs: Sequence[ml_collections.ConfigDict], zero_steps: Sequence[bool] = ()
) -> None:
    """A sweep's one validation pass over the configs its runs will have (before any data
    loads): one `ConfigError` listing each problem once, whichever configs share it.
    `zero_steps[i]` admits `train.num_steps` 0 for configs[i] (zero-shot evaluation)."""
    found: dict[str, None] = {}
    for index, config in enumerate(configs):
        allowed = bool(zero_steps[index]) if index < len(zero_steps) else False
        found.update(dict.fromkeys(problems(config, zero_steps=allowed)))
    if found:
        raise ConfigError("invalid config:\n  " + "\n  ".join(found))


def parse_shots(text: str, *, zero_shot: bool = False, always_all: bool = True) -> list:
    """'1,5,10' -> [1, 5, 10, 'all']: sorted, unique, 'all' last.

    `always_all` appends 'all' even when not listed (the few-shot sweep's reference point);
    `zero_shot` admits k = 0 (transfer: evaluate without fine-tuning).
    """
    shots: set[int] = set()
    with_all = always_all
    lowest = 0 if zero_shot else 1
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if part == ALL:
            with_all = True
        elif part.isdigit() and int(part) >= lowest:
            shots.add(int(part))
        else:
            kind = "non-negative" if zero_shot else "positive"
            raise ValueError(f"--shots: {part!r} is not a {kind} integer (or 'all')")
    if not shots and not with_all:
        raise ValueError(f"--shots: no value in {text!r}")
    return sorted(shots) + ([ALL] if with_all else [])


class BackboneCache:
    """Each distinct (spec, layers kept, storage dtype) loaded once for a whole sweep."""

    def __init__(self):
        self._loaded: dict[variants.BackboneSource, Any] = {}

    def get(self, config: ml_collections.ConfigDict):
        """The frozen backbone `config` needs, or None for variants without one."""
        source = variants.backbone_source(config)
        if source is not None and source not in self._loaded:
            self._loaded[source] = variants.load_backbone(source)
        return None if source is None else self._loaded[source]


@dataclasses.dataclass
class PlannedRun:
    """One run of a sweep: where it lives, what it trains, and its row's identity (`tags`)."""

    directory: Path
    config: ml_collections.ConfigDict
    data: DataBundle
    train_indices: np.ndarray
    tags: dict[str, Any]
    label: str  # how progress lines name it
    init: InitTrainable | Callable[[], InitTrainable] | None = None

    def fingerprint(self) -> dict[str, Any] | None:
        """None while the init tree is not known yet (it is checked when the run starts)."""
        if callable(self.init):
            return None
        identity = None if self.init is None else self.init.identity()
        return fingerprints.fingerprint(
            self.config, self.data, self.train_indices, init=identity, tags=self.tags
        )


class Sweep:
    """Runs planned runs into one workdir with shared caches; see the module docstring."""

    def __init__(self, workdir: str | Path, *, progress: bool = True, overwrite: bool = False):
        self.workdir = Path(workdir)
        self.progress = progress
        self.overwrite = overwrite
        self.steps = StepCache()
        self.backbones = BackboneCache()

    def say(self, text: str) -> None:
        if self.progress and is_main_process():
            print(text, flush=True)

    def check(self, planned: Sequence[PlannedRun]) -> None:
        """Every config valid and every used run directory of the same run — before any run.

        Stale runs are all listed at once (or discarded with `overwrite`), so a rerun with
        another config stops in seconds instead of after the first stale run. First the
        workdir's lock is taken (`run.lock`): a second process on it stops here. A lock taken
        here is given back when this Sweep is gone (a launch script holds its own for the
        whole command, from `cli.prepare_workdir`).
        """
        if lock.acquire(self.workdir):  # taken here (a library call): held while the Sweep is
            weakref.finalize(self, lock.release, self.workdir)
        stale = []
        for run in planned:
            expected = run.fingerprint()
            if expected is None or not fingerprints.is_used(run.directory):
                continue
            old = fingerprints.recorded(run.directory)
            if not fingerprints.matches(old, expected):
                if self.overwrite:
                    fingerprints.discard(run.directory)
                    continue
                detail = (
                    ["no fingerprint.json"]
                    if old is None
                    else fingerprints.differences(old, expected)
                )
                stale.append(f"{run.directory}: {'; '.join(detail[:4])}")
        if stale:
            shown = "\n  ".join(stale[:8]) + (
                f"\n  ... ({len(stale)} in all)" if len(stale) > 8 else ""
            )
            raise fingerprints.StaleRunError(
                f"{self.workdir} holds runs of another configuration:\n  {shown}\n"
                "use a new --workdir, or pass --overwrite to discard the stale runs"
            )

    def write_config(self, config: ml_collections.ConfigDict, extra: Mapping[str, Any]) -> None:
        """The sweep's resolved base config and command, written after the checks passed."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_json(self.workdir / "config.json", {**config.to_dict(), "sweep": dict(extra)})

    def run(self, planned: Sequence[PlannedRun], *, after_each: Callable[[], None]) -> None:
        """Trains the unfinished runs, up to `train.models_per_program` of one program at a time.

        Runs with one `program.group_key` (they differ only in seed, learning rate, k-shot
        windows or frozen weights) train together in one loop (`loop.train_group`),
        in groups of at most the first run's `models_per_program`; the others, and groups of
        one, train alone (`loop.train_and_evaluate`). Every run still has its own directory,
        result and progress line; `after_each` runs after each group.
        """
        total = len(planned)
        for members in program_groups(planned):
            for index, run in members:
                state = "done" if (run.directory / RESULT_FILE).exists() else "run"
                self.say(f"[{index}/{total}] {state} {run.label}")
            runs = [run for _, run in members]
            if len(runs) > 1:
                train_group(
                    runs,
                    backbones=self.backbones,
                    progress=self.progress,
                    overwrite=self.overwrite,
                    steps=self.steps,
                )
            else:
                run = runs[0]
                init = run.init() if callable(run.init) else run.init
                train_and_evaluate(
                    run.config,
                    run.directory,
                    data=run.data,
                    train_indices=run.train_indices,
                    backbone=self.backbones.get(run.config),
                    progress=self.progress,
                    tags=run.tags,
                    init_trainable=init,
                    steps=self.steps,
                    overwrite=self.overwrite,
                )
            if is_main_process():
                after_each()


def program_groups(planned: Sequence[PlannedRun]) -> list[list[tuple[int, PlannedRun]]]:
    """The runs (with their 1-based plan index) in groups that train as one program.

    Runs of one `group_key` — anywhere in the plan — fill groups of at most
    `train.models_per_program` (the first such run's) in plan order; groups are ordered by
    their first run. A run without a key, `models_per_program` 1, or a multi-process job
    gives groups of one.
    """
    groups: list[list[tuple[int, PlannedRun]]] = []
    open_groups: dict[str, list[tuple[int, PlannedRun]]] = {}
    for index, run in enumerate(planned, 1):
        cap = int(run.config.train.get("models_per_program", 1))
        key = group_key(run) if cap > 1 and jax.process_count() == 1 else None
        if key is None:
            groups.append([(index, run)])
            continue
        members = open_groups.get(key)
        if members is None or len(members) >= int(members[0][1].config.train.models_per_program):
            members = open_groups[key] = []
            groups.append(members)
        members.append((index, run))
    return groups


def finished_results(planned: Sequence[PlannedRun]) -> list[tuple[PlannedRun, dict[str, Any]]]:
    """(run, result) for every planned run that has finished, in plan order."""
    found = []
    for run in planned:
        result = read_result(run.directory)
        if result is not None:
            found.append((run, result))
    return found


def others_on_disk(workdir: Path, planned: Sequence[PlannedRun], pattern: str) -> list[Path]:
    """Finished run directories under `workdir` (glob `pattern`) that this command did not plan."""
    mine = {run.directory.resolve() for run in planned}
    return sorted(
        path.parent
        for path in workdir.glob(f"{pattern}/{RESULT_FILE}")
        if path.parent.resolve() not in mine
    )


def warning_lines(planned: Sequence[PlannedRun]) -> list[str]:
    """results.md lines for the class-coverage warnings of the finished runs (none: no lines)."""
    found: dict[str, list[str]] = {}
    for run, result in finished_results(planned):
        for warning in result.get("warnings") or []:
            found.setdefault(warning, []).append(run.label)
    if not found:
        return []
    lines = [
        f"- {warning} ({len(labels)} run{'s' if len(labels) > 1 else ''}, e.g. {labels[0]})"
        for warning, labels in found.items()
    ]
    return ["Warnings (classes a run cannot learn or is not scored on):", "", *lines, ""]


def _models_in_program(run: PlannedRun, result: Mapping[str, Any]) -> int:
    """The recorded program size; records from before it was recorded: the most it could be."""
    if "models_in_program" in result:
        return int(result["models_in_program"] or 1)
    return int(run.config.train.get("models_per_program", 1))


def precision_lines(planned: Sequence[PlannedRun]) -> list[str]:
    """results.md lines saying which finished runs trained in bfloat16 beside other models.

    Such runs come from the former vmapped program of several models, whose bfloat16 rounding
    depended on the models in it, and training amplified that into different runs
    (docs/performance.md, Findings); each model has its own compiled program since, so such a
    run's result is not reproduced by training it again. None of those runs: no lines.
    """
    shared = [
        run.label
        for run, result in finished_results(planned)
        if (result.get("compute_dtype") or {}).get("name") == "bfloat16"
        and _models_in_program(run, result) > 1
    ]
    if not shared:
        return []
    return [
        f"Note: {len(shared)} run{'s' if len(shared) > 1 else ''} (e.g. {shared[0]}) trained "
        "in bfloat16 in the former vmapped program of several models, whose rounding "
        "depended on the runs that shared it, so rerunning one of them gives another result "
        "(the paired intervals include this noise). Runs trained since give the same result "
        "alone or in any group; to reproduce these, rerun them with this code "
        "(docs/performance.md, Findings).",
        "",
    ]


def machine_lines(planned: Sequence[PlannedRun]) -> list[str]:
    """results.md lines naming every machine the finished runs were measured on, and the code
    that made them (a warning when the table mixes code versions)."""
    finished = [result for _, result in finished_results(planned)]
    machines = dict.fromkeys(describe(result["environment"]) for result in finished)
    return [f"Machine: {machine}" for machine in machines] + [""] + mixed_code_lines(finished)
