"""File helpers of the export folder: readable modes, and folders replaced whole or not at all."""

import contextlib
import os
import shutil
import tempfile


def make_readable(path):
    """Gives a written file (or folder tree) the usual 644/755 modes; temporary files start private (600)."""
    os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    for root, folders, files in os.walk(path):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


@contextlib.contextmanager
def atomic_folder(path):
    """Like utils.atomic.atomic_path, for a folder: yields a temporary folder beside `path`.

    On success it is renamed onto `path`. A folder cannot replace another in one rename, so an
    old one is first moved aside and removed last: a kill leaves the old folder, the new one, or
    the old one inside a `.old-` folder, never a half-written one under `path`.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=parent)
    try:
        yield tmp
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".old-{name}-", dir=parent)
            os.replace(path, os.path.join(old, name))
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
