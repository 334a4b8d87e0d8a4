"""Reading the official benchmark archives: zip, zip-in-zip, tar or an extracted folder.

`ArchiveMembers` gives every builder one view of its archive whatever form the user downloaded
it in (and skips macOS `__MACOSX` junk); `fetch_archive` finds the archive in `manual_dir`, or
downloads it with its checksum (recording the first download's sha256 where the dataset
publishes none). Errors name the archive and the member.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from harjax.data.errors import DataError

if TYPE_CHECKING:  # builder.py imports this module
    from harjax.data.builder import HARBuilder

log = logging.getLogger(__name__)

# Byte-order marks of UTF-16 text (Windows tools save CSV and text "as Unicode" that way).
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_text(data: bytes, where: str, *, errors: str = "strict") -> str:
    """A raw text file's text, decoded by its byte-order mark: UTF-16 when it starts with a
    UTF-16 BOM, else UTF-8 (a UTF-8 BOM dropped). Every reader decodes through here."""
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16", errors=errors)
        except UnicodeDecodeError as error:
            raise DataError(
                f"{where}: UTF-16 text (byte-order mark 0x{data[:2].hex()}) that does not "
                f"decode ({error})"
            ) from None
    try:
        return data.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{where}: not UTF-8 text ({error}); expected UTF-8, or UTF-16 with a byte-order mark"
        ) from None


def no_data(where: str, expected: str, *, header: str | None = None) -> DataError:
    """The one error of every reader for a file without data: empty (nothing but white space),
    or a header only. `expected` says what the file should hold."""
    if header is None:
        return DataError(f"{where}: empty file; expected {expected}")
    return DataError(
        f"{where}: header only ({header.strip()[:80]!r}), no data rows; expected {expected}"
    )


def read_number_table(
    members: ArchiveMembers, name: str, width: int, *, expected: str, report=None
) -> np.ndarray:
    """(n, width) float64 of a whitespace-separated text member (UCI-HAR's and UCI HAPT's
    files); every error names the member and, where there is one, the line.

    Blank lines are skipped; a file with nothing else is `no_data` (`expected` says what it
    should hold); `nan` is a missing value, counted with its line in `report` (a
    `builder.Report`) when given and left to the core's gap rule; `inf` is an error.
    """
    text = members.read_text(name)
    where = members.describe(name)
    if not text.strip():
        raise no_data(where, expected)
    try:
        matrix = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
        if matrix.shape[1] == width and not np.isinf(matrix).any():
            missing = np.flatnonzero(np.isnan(matrix).any(axis=1))
            if report is not None and len(missing):
                lines = [n for n, line in enumerate(text.splitlines(), 1) if line.split()]
                report.count_missing(where, np.asarray(lines)[missing])
            return matrix
    except ValueError:
        pass
    # Slow path, only to say exactly which line is wrong.
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width:
            raise DataError(f"{where}:{number}: expected {width} values, found {len(parts)}")
        try:
            values = np.array(parts, dtype=np.float64)
        except ValueError as error:
            raise DataError(f"{where}:{number}: not a number ({error})") from error
        if np.isinf(values).any():
            column = int(np.flatnonzero(np.isinf(values))[0]) + 1
            raise DataError(f"{where}:{number}: inf value (column {column})")
    raise DataError(f"{where}: could not parse (no line found at fault)")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (archives are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArchiveMembers:
    """Read-only view of a dataset's files: a folder, a zip, or zips nested in a zip.

    Names are POSIX paths relative to the archive root (for a folder: its parent, so that the
    folder's name is kept as in a zip of it). macOS junk (`__MACOSX/`, `._*`, `.DS_Store`) is
    not listed. Members named in `nested` (e.g. the UCI repository's
    `UCI HAR Dataset.zip` inside its download) are extracted to a temporary file once and
    their members listed as `<inner.zip>/<name>`. Use as a context manager.
    """

    def __init__(self, path: Path, *, nested: tuple[str, ...] = ()):
        self.path = Path(path)
        self._zips: dict[str, zipfile.ZipFile] = {}  # prefix ("" or "inner.zip/") -> open zip
        self._tmp = tempfile.TemporaryDirectory(prefix="harjax-archive-")
        if self.path.is_dir():
            # Names keep the folder's own name, as a zip of that folder would.
            self._dir_names = [
                p.relative_to(self.path.parent).as_posix()
                for p in self.path.rglob("*")
                if p.is_file()
            ]
        elif self.path.is_file():
            self._dir_names = []
            outer = self._open_zip(self.path, str(self.path))
            self._zips[""] = outer
            for name in outer.namelist():
                if Path(name).name in nested and not _is_junk(name):
                    target = Path(self._tmp.name) / f"{len(self._zips)}.zip"
                    with self._read_errors(name), outer.open(name) as src, open(target, "wb") as f:
                        shutil.copyfileobj(src, f)
                    self._zips[name + "/"] = self._open_zip(target, self.describe(name))
        else:
            raise DataError(f"{self.path}: expected a dataset archive (zip) or folder; not found")

    @staticmethod
    def _open_zip(path: Path, label: str) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(f"{label}: not a readable zip archive ({error})") from error

    def __enter__(self) -> ArchiveMembers:
        return self

    def __exit__(self, *exc) -> None:
        for zf in self._zips.values():
            zf.close()
        self._tmp.cleanup()

    def names(self) -> list[str]:
        found = list(self._dir_names)
        for prefix, zf in self._zips.items():
            found += [prefix + n for n in zf.namelist() if not n.endswith("/")]
        return sorted(n for n in found if not _is_junk(n))

    def describe(self, name: str) -> str:
        """`archive!member` for error messages."""
        return str(self.path.parent / name) if self.path.is_dir() else f"{self.path}!{name}"

    def locate(self, relative: str) -> str:
        """The member whose path ends with `relative` (any root folder above it); DataError if
        none or several."""
        hits = [n for n in self.names() if n == relative or n.endswith("/" + relative)]
        if len(hits) != 1:
            found = "none" if not hits else f"{len(hits)}: {hits[:4]}"
            raise DataError(
                f"{self.path}: expected exactly one file '.../{relative}', found {found}"
            )
        return hits[0]

    def open(self, name: str) -> BinaryIO:
        if self.path.is_dir():
            return open(self.path.parent / name, "rb")
        prefix = max((p for p in self._zips if name.startswith(p)), key=len)
        try:
            return self._zips[prefix].open(name[len(prefix) :])
        except KeyError as error:
            raise DataError(f"{self.describe(name)}: missing from the archive") from error

    def read_text(self, name: str) -> str:
        """The member's text, decoded by its byte-order mark (`decode_text`)."""
        with self._read_errors(name), self.open(name) as f:
            data = f.read()
        return decode_text(data, self.describe(name))

    def open_utf8(self, name: str) -> BinaryIO:
        """The member as UTF-8 bytes for a streaming parser (pyarrow): a UTF-8 BOM skipped,
        a UTF-16 file decoded in memory first; an empty member is `no_data`'s error."""
        with self._read_errors(name):
            f = self.open(name)
            head = f.peek(4)
            if not head.strip() or head.startswith(UTF16_BOMS):  # blank start: read it all
                with f:
                    text = decode_text(f.read(), self.describe(name))
                if not text.strip():
                    raise no_data(self.describe(name), "a CSV header line and data rows")
                return io.BytesIO(text.encode("utf-8"))
            if head.startswith(codecs.BOM_UTF8):
                f.read(len(codecs.BOM_UTF8))
        return f

    def _read_errors(self, name: str):
        return _ReraiseAsDataError(self.describe(name))


class _ReraiseAsDataError:
    """Turns a corrupt member (bad CRC, truncated deflate stream) into a DataError naming it."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(
            kind, (zipfile.BadZipFile, zlib.error, EOFError, OSError)
        ):
            raise DataError(f"{self.where}: corrupt archive member ({error})") from error
        return False


def _is_junk(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return (
        name.startswith("__MACOSX/")
        or "/__MACOSX/" in name
        or base.startswith("._")
        or (base == ".DS_Store")
    )


def fetch_archive(builder: HARBuilder, accepted: tuple[str, ...]) -> Path:
    """The raw archive: the first of `accepted` (file or folder names) in manual_dir — an error
    naming them when manual_dir is set but holds none — else (no manual_dir) the download of
    `builder.URL` into `<data_dir>/downloads/ARCHIVE_NAME`.

    With `builder.SHA256` the download must match it. Without one (no published checksum), the
    first download's sha256 is recorded beside it (`<archive>.sha256`) and logged, and every
    later use is checked against that record (trust on first use).
    """
    manual = builder.manual_dir
    if manual is not None:
        # A manual_dir means the user's files: a mistyped folder must not quietly become the
        # official download (nor a download attempt offline).
        for name in accepted:
            if (manual / name).exists():
                return manual / name
        found = "does not exist" if not manual.is_dir() else "holds none of them"
        raise DataError(
            f"{builder.name}: expected one of {list(accepted)} in manual_dir {manual}/, which "
            f"{found}; nothing is downloaded when manual_dir is set (leave it empty to "
            f"download). {builder.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
    instructions = (
        f"{builder.name}: expected one of {list(accepted)} in manual_dir (pass manual_dir). "
        f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
    if not builder.URL:
        raise DataError(instructions)
    dest = Path(builder.data_dir_root) / "downloads" / builder.ARCHIVE_NAME
    return download(builder.URL, dest, sha256=builder.SHA256, instructions=instructions)


def download(url: str, dest: Path, *, sha256: str | None, instructions: str) -> Path:
    """`url` saved at `dest` (kept when it already matches), checked against `sha256`, or
    against the sha256 recorded at the first download when none is published."""
    record = dest.with_name(dest.name + ".sha256")
    expected = sha256 or (record.read_text().strip() if record.exists() else None)
    if dest.exists() and expected and sha256_of(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as src:
            shutil.copyfileobj(src, out)
        found = sha256_of(part)
        if expected and found != expected:
            raise DataError(f"{url}: sha256 {found}, expected {expected} ({record})")
        os.replace(part, dest)
    except OSError as error:
        raise DataError(f"could not download {url} ({error}). {instructions}") from error
    finally:
        part.unlink(missing_ok=True)  # a failed download leaves no `*.part` behind
    if not sha256 and not record.exists():
        record.write_text(found + "\n")
        log.warning("%s: recorded sha256 %s of the first download in %s", url, found, record)
    return dest


def raw_data_content(builder) -> str | None:
    """sha256 of the raw files a user supplied: a `csv:` folder (its builder's digest) or the
    archive found in `manual_dir`; None for downloads, which are checked against their sha256.
    Computed once per builder (kept as its `content_digest`: a sweep asks for every run).
    """
    content = getattr(builder, "content_digest", None)
    if content is not None:
        return str(content)
    manual = getattr(builder, "manual_dir", None)
    if manual is None:
        return None
    digest = manual_archive_digest(
        manual, getattr(builder, "ACCEPTED", ()), getattr(builder, "data_dir_root", None)
    )
    if digest is not None:
        builder.content_digest = digest
    return digest


def manual_archive_digest(
    manual_dir: str | os.PathLike, accepted: tuple[str, ...], cache_root: str | os.PathLike | None
) -> str | None:
    """sha256 of the first of `accepted` (a file, or a folder's names and bytes) in manual_dir;
    None when none is there. Digests are cached under `cache_root` against each file's identity
    (`harjax.digests`), so an unchanged archive is hashed once, a changed one again."""
    from harjax.digests import DigestCache, tree_digest

    for name in accepted:
        path = Path(manual_dir) / name
        if not path.exists():
            continue
        cache_path = None if cache_root is None else Path(cache_root) / "raw_content_digests.json"
        cache = DigestCache(cache_path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            return tree_digest(files, path, cache)
        digest = cache.sha256(path)
        cache.save()
        return digest
    return None
