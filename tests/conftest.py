"""Shared test set-up: the repo root on sys.path, quiet TensorFlow, the tiny demo data fixture."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # the kernels run.py uses; set before any test imports TensorFlow, inherited by run.py subprocesses

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """60 tiny demo images with train/val/test label files (`tiny_run.tiny_config`), built once per test module."""
    from tiny_run import tiny_config

    folder = tmp_path_factory.mktemp("data")
    tiny_config(folder)
    return folder
