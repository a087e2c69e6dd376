"""lnsim.files: atomic writes give the mode a plain ``open`` would (the umask's, or the existing file's), and
output paths are checked by creating a file there, leaving nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from lnsim.files import atomic_write, check_writable


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set this process's umask for the test (a real one: the kernel applies it), restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o027, 0o640)])
@pytest.mark.parametrize("data", ["text", b"bytes", lambda f: f.write(b"by a writer")])
def test_new_file_mode_is_0666_less_the_umask(mask, mode, data, umask, tmp_path):
    umask(mask)
    path = tmp_path / "out.json"
    atomic_write(str(path), data)
    assert _mode(path) == mode
    with open(tmp_path / "plain", "w"):  # what open() gives, for comparison
        pass
    assert _mode(tmp_path / "plain") == mode
    assert sorted(os.listdir(tmp_path)) == ["out.json", "plain"]


def test_rewriting_a_file_keeps_its_mode(umask, tmp_path):
    umask(0o022)
    path = tmp_path / "kept.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write(str(path), "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_cli_files_follow_the_umask_of_the_command(tmp_path):
    # The real command in a process of its own with umask 027: its JSON is rw-r-----.
    out = tmp_path / "spec.json"
    subprocess.run([sys.executable, "-m", "lnsim.cli", "info", "--json", str(out)], check=True, capture_output=True,
                   umask=0o027)
    assert _mode(out) == 0o640


@pytest.mark.parametrize("where, reason", [
    ("missing/x.json", "No such file or directory"),
    ("afile/x.json", "Not a directory"),
    ("adir", "a directory"),
])
def test_check_writable_refuses_with_the_reason(where, reason, tmp_path):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    path = str(tmp_path / where)
    with pytest.raises(ValueError) as e:
        check_writable(path, "json")
    assert str(e.value) == f"json must be a writable file path, not {path!r} ({reason})"


def test_check_writable_leaves_nothing_and_touches_no_existing_file(tmp_path):
    existing = tmp_path / "old.json"
    existing.write_text("keep me")
    check_writable(str(existing), "json")
    check_writable(str(tmp_path / "new.json"), "json")
    assert os.listdir(tmp_path) == ["old.json"] and existing.read_text() == "keep me"
