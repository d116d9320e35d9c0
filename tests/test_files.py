"""The one write path: atomic files and folders, write failures as one line, the output lock."""

import errno
import os
import subprocess
import sys

import pytest

from factbench import files
from factbench.errors import BusyError, WriteError


def test_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "a.json"
    files.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left


def test_folder_replaced_whole_and_old_kept_on_failure(tmp_path):
    target = tmp_path / "out"
    with files.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("old")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("new")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["x"]
    with files.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("new")
    assert [p.name for p in target.iterdir()] == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_full_disk_is_one_line_and_keeps_the_old_file(full_disk):
    from conftest import fill

    old = full_disk / "card.json"
    try:
        files.write_json(old, {"v": 1})
    except WriteError:
        pytest.skip("read-only fallback: nothing can be written there to keep")  # pragma: no cover
    fill(full_disk)
    with pytest.raises(WriteError) as e:
        files.write_json(old, {"v": 2, "pad": "x" * 200_000})
    assert str(full_disk / "card.json") in str(e.value) and "\n" not in str(e.value)
    assert old.read_text() == '{\n  "v": 1\n}\n'
    assert not [p for p in full_disk.iterdir() if p.name.startswith(".")]


def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores permission bits: emulate with the error it would get
        ro.chmod(0o755)
        pytest.skip("running as root: covered by the tmpfs test")
    with pytest.raises(WriteError, match="permission denied"):
        files.write_text(ro / "x.txt", "x")
    ro.chmod(0o755)


def test_write_error_message_names_the_cause(tmp_path):
    e = files.write_error(tmp_path / "x", OSError(errno.ENOSPC, "No space left on device"))
    assert str(e) == f"cannot write {tmp_path / 'x'}: no space left on the device; nothing was changed there"


def test_a_second_writer_is_refused(tmp_path):
    code = ("import sys, time; from factbench import files\n"
            "with files.output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BusyError, match="another factbench process"), files.output_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with files.output_lock(tmp_path):  # released when the holder died, even by SIGKILL
        pass
