"""Atomic writes: the old file or the new one, never a torn one, nothing left behind."""

import os
import stat

import pytest

from utils.atomic import atomic_path, write_text


def test_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "report.json"
    write_text(str(path), "one")
    write_text(str(path), "two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["report.json"]


def test_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            assert tmp.endswith(".keras")  # the extension survives: Keras picks the format by it
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["model.keras"]


def test_compound_extension_and_permissions(tmp_path):
    with atomic_path(str(tmp_path / "state.weights.h5")) as tmp:
        assert tmp.endswith(".weights.h5")
        open(tmp, "w").write("x")
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(os.stat(tmp_path / "state.weights.h5").st_mode)
    assert mode == 0o666 & ~umask  # readable by others as a plain open() would make it
