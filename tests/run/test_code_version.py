"""Every result records the code that made it; results.md says plainly when a table mixes code."""

from harjax.run import code_version


def test_the_source_hash_follows_the_package_files(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    before = code_version.source_sha256(package)
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert code_version.source_sha256(package) != before
    recorded = code_version.code_version()
    assert recorded["source_sha256"] == code_version.source_sha256()
    assert set(recorded) == {"source_sha256", "git_commit", "git_dirty"}


def _result(source, commit="0123456789abcdef", dirty=False):
    code = {"source_sha256": source, "git_commit": commit, "git_dirty": dirty}
    return {"environment": {"code": code}}


def test_results_md_says_when_a_table_mixes_code():
    one = [_result("a" * 64), _result("a" * 64, commit="fedcba9876543210")]  # same sources
    (line, _) = code_version.mixed_code_lines(one)
    # One version of the code, made under two commits: each commit's runs are counted (the
    # UCI-HAR page once credited all 424 runs of one sources hash to its first run's commit).
    assert line.startswith(
        "Code: sources aaaaaaaaaaaa (1 by git 0123456789, 1 by git fedcba9876) — not the code of"
    )
    now = code_version.code_version()["source_sha256"]
    (line, _) = code_version.mixed_code_lines([_result(now)])
    assert line == f"Code: git 0123456789, sources {now[:12]}"
    mixed = code_version.mixed_code_lines(
        [_result("a" * 64), _result("b" * 64, dirty=True), _result("a" * 64), {"environment": {}}]
    )
    assert mixed[0].startswith("Warning: this table mixes runs made by 3 different versions")
    assert "2 by git 0123456789, sources aaaaaaaaaaaa" in mixed[0]
    assert "1 by git 0123456789 (uncommitted changes), sources bbbbbbbbbbbb" in mixed[0]
    assert "1 by not recorded" in mixed[0]
    split = code_version.mixed_code_lines(
        [_result("a" * 64, commit="1" * 40)] * 3 + [_result("a" * 64)] + [_result("b" * 64)]
    )
    assert "4 by sources aaaaaaaaaaaa (3 by git 1111111111, 1 by git 0123456789)" in split[0]
    assert code_version.mixed_code_lines([]) == []
