"""The code a run was made by, recorded with its result so a table can say when it mixes code.

`harjax.__version__` stays the same while the library changes under a study that runs for
days, so each result records `code_version()`: the sha256 of the package's own sources (exact,
and available without git, e.g. from a wheel) and, in a git checkout, the commit and whether
the package differs from it. Code is recorded, not fingerprinted: an unrelated edit must not
make every finished run stale, but a sweep's `results.md` says when its runs were made by
different code (`mixed_code_lines`).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def source_sha256(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over the package's `.py` files (relative paths and bytes, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(f"{path.relative_to(package_dir).as_posix()}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR.parent), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def code_version() -> dict[str, Any]:
    """{'source_sha256', 'git_commit', 'git_dirty'} of the code this process imported.

    Computed once per process (the code imported at start is the code that runs, whatever is
    edited later); `git_commit`/`git_dirty` are None outside a git checkout of the package.
    """
    commit = dirty = None
    top = _git("rev-parse", "--show-toplevel")
    if top is not None and PACKAGE_DIR.is_relative_to(Path(top).resolve()):
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--", PACKAGE_DIR.name)
        dirty = None if status is None else bool(status)
    return {"source_sha256": source_sha256(), "git_commit": commit, "git_dirty": dirty}


def describe(code: Mapping[str, Any] | None) -> str:
    """'git 1a2b3c4d (uncommitted changes), sources 5e6f7a8b' — or why it is unknown."""
    if not code:
        return "not recorded (made before harjax recorded its code)"
    sources = f"sources {str(code.get('source_sha256'))[:12]}"
    if not code.get("git_commit"):
        return sources
    changes = " (uncommitted changes)" if code.get("git_dirty") else ""
    return f"git {code['git_commit'][:10]}{changes}, {sources}"


def _describe_group(codes: list[Mapping[str, Any] | None]) -> str:
    """One sources hash's runs: `describe`, or with several commits each commit's count
    ('sources 5e6f7a8b (384 by git 1a2b3c4d, 40 by git 9f8e7d6c)'), so no count is credited to
    the first run's commit alone."""
    commits: dict[tuple, int] = {}
    for code in codes:
        key = (None, None) if not code else (code.get("git_commit"), code.get("git_dirty"))
        commits[key] = commits.get(key, 0) + 1
    if len(commits) == 1 or not codes[0]:
        return describe(codes[0])
    ordered = sorted(commits.items(), key=lambda item: -item[1])
    parts = ", ".join(
        f"{count} by git {str(commit)[:10]}" + (" (uncommitted changes)" if dirty else "")
        if commit
        else f"{count} outside git"
        for (commit, dirty), count in ordered
    )
    return f"sources {str(codes[0].get('source_sha256'))[:12]} ({parts})"


def mixed_code_lines(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """results.md lines: the code that made the table's runs, and plainly when it is mixed.

    Runs are grouped by their sources' hash (commits that change no code are the same code);
    a group made under several commits counts the runs of each.
    """
    groups: dict[str | None, list[Mapping[str, Any] | None]] = {}
    for result in results:
        code = (result.get("environment") or {}).get("code")
        groups.setdefault((code or {}).get("source_sha256"), []).append(code)
    if not groups:
        return []
    if len(groups) == 1:
        ((source, codes),) = groups.items()
        line = f"Code: {_describe_group(codes)}"
        if source != code_version()["source_sha256"]:
            line += (
                f" — not the code of this command ({describe(code_version())}): its finished "
                "runs were reused"
            )
        return [line, ""]
    total = sum(len(codes) for codes in groups.values())
    ordered = sorted(groups.values(), key=len, reverse=True)
    parts = "; ".join(f"{len(codes)} by {_describe_group(codes)}" for codes in ordered)
    return [
        f"Warning: this table mixes runs made by {len(groups)} different versions of the code "
        f"({total} runs: {parts}). Finished runs are reused when the code changes; rerun in a "
        "new --workdir for a table made by one version.",
        "",
    ]
