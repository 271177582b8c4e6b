"""The whole product through `python run.py`: train on tiny demo data, test, resume, survive a kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
from conftest import ROOT, copy_run, run_in_process

import multi_label.model  # noqa: F401  registers the custom layers (normalisation, fused BatchNorm, heads) for loading

# precision pinned: the exact comparisons hold on every machine (auto picks bfloat16 on CPUs with AMX)
TINY = ["demo_images=160", "image_size=32", "backbone_width=0.125", "batch_size=16", "shuffle_buffer=64",
        "precision='float32'"]


def run(cwd, *args, timeout=300, settings=TINY):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *settings, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def history_epochs(folder):
    with open(folder / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_train_then_test_then_resume(tiny_trained_run, tmp_path):
    trained, settings, result = tiny_trained_run  # python run.py <settings> epochs=2 (conftest): 42/6/12 images
    folder = copy_run(trained, tmp_path / "run")  # the runs below write into the run's folder
    run_dir = folder / "models" / "tiny"
    for name in ["best.keras", "last.keras", "config.json", "classes.json", "history.csv", "metrics.json",
                 "predictions.csv", "best.json"]:
        assert (run_dir / name).is_file(), name
    assert (folder / "logs" / "tiny").is_dir()
    assert history_epochs(run_dir) == [0, 1]
    assert "val_mAP = " in result.stdout and "Test mAP: " in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["mAP"] <= 1 and metrics["images"] == 12
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "image" and len(rows) == 13 and rows[1][0].startswith("test/")
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2

    status, tested = run_in_process(folder, *settings, "mode=test")  # what test does; no command line to test
    assert status == 0, tested[-3000:]
    assert f"Test mAP: {metrics['mAP']:.4f}" in tested  # the same model gives the same figure

    again = run(folder, "epochs=2", settings=settings)  # the same command after completion trains nothing more
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming from the backup after epoch 2" in again.stdout
    assert history_epochs(run_dir) == [0, 1]

    other = run(folder, "epochs=3", "lr=0.01", settings=settings)
    assert other.returncode == 2
    assert other.stderr.strip().splitlines()[-1].startswith("error: models/tiny holds a run with different settings (")
    assert "lr: 0.004 -> 0.01" in other.stderr


def test_sigkill_mid_epoch_then_resume(tmp_path):
    args = ["epochs=3", "run_name=killed", "demo_images=600"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *TINY, *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pointer = tmp_path / "models" / "killed" / "backup" / "latest"
    deadline = time.time() + 240
    while not pointer.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert pointer.exists(), process.communicate()[0][-3000:]
    time.sleep(0.5)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait()

    result = run(tmp_path, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Resuming from the backup after epoch" in result.stdout
    run_dir = tmp_path / "models" / "killed"
    assert sorted(set(history_epochs(run_dir))) == [0, 1, 2]
    model = keras.saving.load_model(str(run_dir / "best.keras"), safe_mode=True, compile=False)
    assert np.isfinite(model.predict(np.zeros((1, 32, 32, 3)), verbose=0)).all()


def test_bad_label_line_stops_before_training(tmp_path):
    (tmp_path / "train.csv").write_text("image,a,b\nx.jpg,1,0\ny.jpg,1,2\n")
    result = run(tmp_path, "train_labels='train.csv'", "val_labels=''", "test_labels=''")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: train.csv:3: column 'b' has value '2'; expected {1, 0, -1}"
    assert not (tmp_path / "models").exists()
