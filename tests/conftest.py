"""Shared test set-up: the repo root on sys.path, quiet TensorFlow, the tiny demo data and the shared runs.

A run that several tests only read is trained once per session here; a test that changes its folder
works on a copy (`copy_run`).
"""

import contextlib
import io
import os
import pathlib
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.console import VERBOSE_VARIABLE, prefer_onednn  # noqa: E402

prefer_onednn()  # the kernels run.py uses; set before any test imports TensorFlow, inherited by run.py subprocesses

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """60 tiny demo images with train/val/test label files (`tiny_run.tiny_config`), built once per test module."""
    from tiny_run import tiny_config

    folder = tmp_path_factory.mktemp("data")
    tiny_config(folder)
    return folder


def run_in_process(cwd, *args):
    """`python run.py *args` in this process, in the folder `cwd`: returns (exit status, what it printed).

    For the tests of what a mode does rather than of the command line (arguments, exit codes, the error
    line, signals stay subprocesses): it saves a subprocess's TensorFlow start, about 6 s. Like the
    command, run.main seeds the global random generators; an error is raised, not turned into a status.
    """
    import run

    output, argv = io.StringIO(), sys.argv
    sys.argv = [str(ROOT / "run.py"), *args]  # what a resume hint quotes
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(output):
            status = run.main(list(args))
    finally:
        sys.argv = argv
    return status, output.getvalue()


def copy_run(root, destination):
    """A copy of the folder of a shared run (its models/ and data/) for a test that changes it; returns it."""
    shutil.copytree(root, destination, symlinks=True)
    return destination


# The digit-position demo: the digit at each of 4 positions, -1 where there is none.
GROUPS = {"pos1": 10, "pos2": 10, "pos3": 10, "pos4": 10}
# 60 demo images (train/val/test 42/6/12) at 32 px, a 1/8-width ResNet-18, 1 epoch
GROUPS_RUN = ["demo_images=60", "image_size=32", "backbone_width=0.125", "batch_size=8", "shuffle_buffer=16",
              "precision='float32'", "epochs=1", "warmup_epochs=0", "run_name=groups", "head=groups",
              f"groups={GROUPS!r}", "train_labels=data/demo/train_groups.csv",
              "val_labels=data/demo/val_groups.csv", "test_labels=data/demo/test_groups.csv"]


@pytest.fixture(scope="session")
def groups_run(tmp_path_factory):
    """(folder, printed output) of a groups run trained and tested by `run.py` once per session, in process.

    The folder holds data/demo/ and models/groups/; the tests that read it share it.
    """
    folder = tmp_path_factory.mktemp("groups_run")
    status, output = run_in_process(folder, *GROUPS_RUN)
    assert status == 0, output[-3000:]
    return folder, output


# run.py with a progress line after every training step instead of every few minutes (one constant changed)
PROGRESS_EVERY_STEP = """
import sys
import run
import utils.console

def start_tensorflow():
    gpus = utils.console.start_tensorflow()
    import multi_label.training.callbacks
    multi_label.training.callbacks.PROGRESS_INTERVAL_S = 0
    return gpus

run.start_tensorflow = start_tensorflow
sys.exit(run.main(sys.argv[1:]))
"""


def user_env(**changes):
    """The environment of a user's shell: none of the test set-up's TensorFlow settings."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", VERBOSE_VARIABLE)}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **changes}


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory):
    """(folder, settings, result) of the tiny run trained by `python run.py <settings> epochs=2` once per session.

    tiny_run.TINY on the 60 images of the tiny demo in <folder>/data (2 epochs on 42, then the test on 12),
    run as a user's shell would, its stdout a pipe, with a progress line after every step. The first-run
    tests read its console and folder; a test that runs it again works on a copy (`copy_run`).
    """
    from tiny_run import TINY, tiny_config

    folder = tmp_path_factory.mktemp("tiny_run")
    config = tiny_config(folder / "data")  # builds the demo images
    settings = [*(f"{key}={value}" for key, value in TINY.items()),
                *(f"{split}={getattr(config, split)}" for split in ("train_labels", "val_labels", "test_labels"))]
    result = subprocess.run([sys.executable, "-c", PROGRESS_EVERY_STEP, *settings, "epochs=2"], cwd=folder,
                            capture_output=True, text=True, timeout=300, env=user_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder, settings, result
