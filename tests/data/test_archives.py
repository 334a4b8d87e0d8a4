"""Finding and downloading a raw archive: a failed download leaves nothing behind."""

import types

import pytest

from harjax.data.archives import fetch_archive, sha256_of
from harjax.data.errors import DataError


def _builder(tmp_path, url, sha256=None):
    """Just what `fetch_archive` reads from a HARBuilder."""
    return types.SimpleNamespace(
        name="toy",
        manual_dir=None,
        URL=url,
        SHA256=sha256,
        ARCHIVE_NAME="toy.zip",
        MANUAL_DOWNLOAD_INSTRUCTIONS="Put toy.zip into manual_dir.",
        data_dir_root=str(tmp_path / "tfds"),
    )


def test_failed_download_leaves_no_partial_file(tmp_path):
    builder = _builder(tmp_path, (tmp_path / "missing.zip").as_uri())
    with pytest.raises(DataError, match=r"could not download .*missing\.zip.*toy\.zip"):
        fetch_archive(builder, ("toy.zip",))
    assert list((tmp_path / "tfds" / "downloads").iterdir()) == []


def test_checksum_mismatch_leaves_no_partial_file(tmp_path):
    served = tmp_path / "served.zip"
    served.write_bytes(b"not the archive")
    builder = _builder(tmp_path, served.as_uri(), sha256="0" * 64)
    with pytest.raises(DataError, match=r"served\.zip: sha256 .*, expected 0000"):
        fetch_archive(builder, ("toy.zip",))
    assert list((tmp_path / "tfds" / "downloads").iterdir()) == []


def test_download_is_checked_and_kept(tmp_path):
    served = tmp_path / "served.zip"
    served.write_bytes(b"the archive")
    builder = _builder(tmp_path, served.as_uri(), sha256=sha256_of(served))
    path = fetch_archive(builder, ("toy.zip",))
    assert path.read_bytes() == b"the archive"
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy.zip"]


def test_a_manual_dir_without_the_archive_is_an_error_not_a_download(tmp_path):
    """A mistyped manual_dir must not quietly train on the official download instead."""
    served = tmp_path / "served.zip"
    served.write_bytes(b"the official archive")
    builder = _builder(tmp_path, served.as_uri(), sha256=sha256_of(served))
    builder.manual_dir = tmp_path / "my_archive_typo"
    with pytest.raises(DataError, match=r"toy\.zip.*my_archive_typo/, which does not exist"):
        fetch_archive(builder, ("toy.zip",))
    (tmp_path / "my_archive_typo").mkdir()
    with pytest.raises(DataError, match=r"holds none of them; nothing is downloaded"):
        fetch_archive(builder, ("toy.zip",))
    assert not (tmp_path / "tfds" / "downloads").exists()
