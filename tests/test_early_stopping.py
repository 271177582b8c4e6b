"""early_stopping_patience: the run ends after that many epochs without a better validation mAP,
and a run killed in between counts the epochs before the kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from multi_label.training.early_stopping import EarlyStoppingOnBest, epochs_since_best, stopped_early

# precision pinned and the backbone frozen (freeze_epochs >= epochs) with a learning rate too small to
# move the head: the validation mAP after epoch 1 never improves, so the best epoch stays 1
FLAT = ["demo_images=160", "image_size=32", "backbone_width=0.125", "batch_size=16", "shuffle_buffer=64",
        "precision='float32'", "lr=1e-12", "warmup_epochs=0", "freeze_epochs=20", "epochs=20",
        "early_stopping_patience=2", "run_name=flat"]


class _Model:
    stop_training = False


def _best(folder, epoch):
    (folder / "best.json").write_text(json.dumps({"epoch": epoch, "monitor": "val_mAP", "value": 0.5}))


def test_the_count_is_read_from_the_best_epoch(tmp_path):
    assert epochs_since_best(str(tmp_path), 3) is None and not stopped_early(str(tmp_path), 3, 1)
    _best(tmp_path, 2)
    assert epochs_since_best(str(tmp_path), 5) == 3
    assert stopped_early(str(tmp_path), 4, 2) and not stopped_early(str(tmp_path), 3, 2)
    assert not stopped_early(str(tmp_path), 9, 0)  # 0: off


def test_the_callback_stops_at_the_patience(tmp_path, capsys):
    _best(tmp_path, 2)
    callback = EarlyStoppingOnBest(str(tmp_path), patience=2)
    callback.set_model(_Model())
    callback.on_epoch_end(2)  # epoch 3: one epoch since the best
    assert not callback.model.stop_training
    callback.on_epoch_end(3)  # epoch 4: two
    assert callback.model.stop_training and callback.stopped_epoch == 4
    assert "Epoch 4: early stopping, 2 epochs without a better validation mAP" in capsys.readouterr().out


def _epochs(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _run(cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *FLAT], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
def test_a_killed_run_resumes_with_its_count_and_a_stopped_run_stays_stopped(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *FLAT], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "models" / "flat"
    deadline = time.time() + 300
    # killed once epoch 2 is backed up: one epoch without improvement counted, one to go
    while time.time() < deadline and process.poll() is None and not (
            (run_dir / "history.csv").is_file() and len(_epochs(run_dir)) >= 2 and (run_dir / "backup").is_dir()):
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    assert _epochs(run_dir)[:2] == [0, 1], output[-3000:]
    assert json.loads((run_dir / "best.json").read_text())["epoch"] == 1

    resumed = _run(tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    # best epoch 1, patience 2: the run ends after epoch 3, counting epoch 2 from before the kill
    assert sorted(set(_epochs(run_dir))) == [0, 1, 2]
    assert "Epoch 3: early stopping, 2 epochs without a better validation mAP" in resumed.stdout
    assert "Finished 3 of 20 epochs" in resumed.stdout and "Test mAP: " in resumed.stdout

    again = _run(tmp_path)  # the same command once more: nothing more is trained
    assert again.returncode == 0, again.stderr[-3000:]
    assert "The run stopped early before (early_stopping_patience=2)" in again.stdout
    assert sorted(set(_epochs(run_dir))) == [0, 1, 2]
