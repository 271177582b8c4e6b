"""Faults during training: signals, kills at random points, a full disk, a NaN loss, repeatability.

Runs go through `python run.py` on tiny data (32 px, a 1/8-width ResNet-18), except the full-disk
case, which makes a checkpoint write fail in this process.
"""

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import ROOT
from tiny_run import save_tiny_model, tiny_config

from multi_label.training.backup import AtomicBackupAndRestore
from multi_label.training.callbacks import BestAndLastCheckpoint
from multi_label.training.errors import TrainingError

# precision pinned: the exact comparisons hold on every machine (auto picks bfloat16 on CPUs with AMX)
TINY = ["demo_images=160", "image_size=32", "backbone_width=0.125", "batch_size=16", "shuffle_buffer=64",
        "precision='float32'"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def command(*args):
    return [sys.executable, str(ROOT / "run.py"), *TINY, *args]


def run(cwd, *args, timeout=300):
    return subprocess.run(command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)


def start(cwd, *args):
    return subprocess.Popen(command(*args), cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path, process, seconds=240):
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert path.exists(), process.communicate()[0][-3000:]


def backup_meta(run_dir):
    for _ in range(10):  # a running job may move the pointer on and remove the folder between the two reads
        name = (run_dir / "backup" / "latest").read_text().strip()
        try:
            return json.loads((run_dir / "backup" / name / "meta.json").read_text())
        except FileNotFoundError:
            time.sleep(0.05)
    raise AssertionError("the backup pointer names no backup")


def history_epochs(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def assert_loadable(path):
    model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    assert np.isfinite(model.predict(np.zeros((1, 32, 32, 3)), verbose=0)).all()


def test_sigterm_mid_epoch_saves_backup_and_says_how_to_resume(tmp_path):
    # 210 training images, 13 steps per epoch; save_every_steps=3 writes the first backup after step 3
    args = ["epochs=1", "run_name=term", "demo_images=300", "save_every_steps=3", "test_labels=''"]
    process = start(tmp_path, *args)
    run_dir = tmp_path / "models" / "term"
    wait_for(run_dir / "backup" / "latest", process)
    assert backup_meta(run_dir)["steps_in_epoch"] >= 3
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, out[-2000:] + err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: training stopped by SIGTERM; the backup is saved in models/term/backup; "
                           "resume with: python "), last
    assert "run.py demo_images=160 image_size=32 " in last and " epochs=1 run_name=term " in last
    assert "Traceback" not in err
    meta = backup_meta(run_dir)
    assert meta["epoch"] == 0 and meta["steps_in_epoch"] >= 3, meta  # saved at the step end after the signal

    resumed = run(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (f"Resuming from the backup after epoch 0 and {meta['steps_in_epoch']} steps of epoch 1; "
            f"epoch 1 goes on from batch {meta['steps_in_epoch'] + 1}") in resumed.stdout
    assert history_epochs(run_dir) == [0]
    assert backup_meta(run_dir)["epoch"] == 1 and backup_meta(run_dir)["steps_in_epoch"] == 0
    assert_loadable(run_dir / "best.keras")


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    # epoch 1 trains normally; from epoch 2 on the step schedule multiplies lr by 1e30
    args = ["epochs=3", "run_name=nan", "test_labels=''", "lr_schedule='step'", "lr_steps={1: 1e30}",
            "warmup_epochs=0"]
    result = run(tmp_path, *args)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: loss became "), last
    assert " at epoch 2, batch " in last
    assert last.endswith("the last finished epoch's checkpoints are kept. Try a lower lr, a longer warmup_epochs, "
                         "or check the labels (mode=check)")
    run_dir = tmp_path / "models" / "nan"
    assert json.loads((run_dir / "best.json").read_text())["epoch"] == 1
    assert backup_meta(run_dir)["epoch"] == 1
    assert history_epochs(run_dir) == [0]
    assert_loadable(run_dir / "best.keras")


def _no_space(*args, **kwargs):
    path = args[0] if args else kwargs.get("filepath")
    with open(path, "wb") as f:
        f.write(b"partial")  # the disk filled up half-way through the file
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_keeps_last_good_checkpoint_and_backup(tmp_path, monkeypatch):
    config = tiny_config(tmp_path / "data")
    _, model = save_tiny_model(config, tmp_path / "unused")
    folder = tmp_path / "run"
    checkpoint = BestAndLastCheckpoint(str(folder))
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_mAP": 0.5})
    backup = AtomicBackupAndRestore(str(folder / "backup"))
    backup.set_model(model)
    backup.on_epoch_end(0)
    saved = {name: (folder / name).read_bytes() for name in ("best.keras", "best.json", "last.keras")}
    pointer = (folder / "backup" / "latest").read_text()
    weights = (folder / "backup" / pointer.strip() / "state.weights.h5").read_bytes()

    monkeypatch.setattr(model, "save", _no_space)
    monkeypatch.setattr(model, "save_weights", _no_space)
    with pytest.raises(TrainingError) as caught:
        checkpoint.on_epoch_end(1, {"val_mAP": 0.9})
    message = str(caught.value)
    assert message == (f"cannot write {folder}: No space left on device; the last good checkpoint and backup are "
                       "kept. Free disk space (or fix the folder) and run the same command to resume")
    with pytest.raises(TrainingError, match=r"^cannot write .*backup: No space left on device; "):
        backup.on_epoch_end(1)

    assert {name: (folder / name).read_bytes() for name in saved} == saved
    assert (folder / "backup" / "latest").read_text() == pointer
    assert (folder / "backup" / pointer.strip() / "state.weights.h5").read_bytes() == weights
    assert not list(folder.glob(".tmp-*")), "a temporary file was left behind"
    assert_loadable(folder / "best.keras")
    assert backup.restored_epoch() == 1


@pytest.mark.slow  # two whole runs with a single-threaded pipeline: about two minutes on 2 busy cores
def test_deterministic_runs_repeat_exactly(tmp_path):
    results = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        result = run(folder, "epochs=1", "run_name=same", "deterministic=True", "report=False")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run_dir = folder / "models" / "same"
        results.append(((run_dir / "history.csv").read_text(),
                        json.loads((run_dir / "metrics.json").read_text())["mAP"]))
    assert results[0] == results[1]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_kills_at_random_points_then_resume(tmp_path, seed):
    """Three SIGKILLs at seeded random moments (training steps, validation, checkpoint writes), then a clean finish."""
    rng = random.Random(seed)
    args = ["epochs=4", "run_name=faults", "demo_images=400", "save_every_steps=4", "test_labels=''"]
    run_dir = tmp_path / "models" / "faults"
    for _ in range(3):
        process = start(tmp_path, *args)
        wait_for(run_dir / "backup" / "latest", process)
        time.sleep(rng.uniform(0.0, 4.0))
        if process.poll() is not None:
            break  # finished before the kill: nothing left to interrupt
        process.send_signal(signal.SIGKILL)
        process.wait()
    result = run(tmp_path, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(set(history_epochs(run_dir))) == [0, 1, 2, 3]
    assert backup_meta(run_dir)["epoch"] == 4
    assert json.loads((run_dir / "best.json").read_text())["epoch"] in (1, 2, 3, 4)
    assert_loadable(run_dir / "best.keras")
    assert_loadable(run_dir / "last.keras")
