"""A run killed after its warmup and resumed continues with the learning rate and optimizer state it would have had."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

from conftest import ROOT
from test_end_to_end import TINY, run

# 700 training images / 16 = 43 steps per epoch: epoch 3 lasts long enough to be killed inside it.
ARGS = ["epochs=3", "warmup_epochs=1", "deterministic=True", "demo_images=1000", "val_labels=''",
        "test_labels=''", "optimizer='radam'", "weight_decay=0.01"]
STEPS = 700 // 16


def history(folder):
    with open(folder / "history.csv") as f:
        return {int(row["epoch"]): row for row in csv.DictReader(f)}


def backup(folder):
    """(meta, {variable path: array}) of the latest backup in models/<run>/backup/."""
    pointer = folder / "backup" / "latest"
    state = folder / "backup" / pointer.read_text().strip()
    arrays = {}
    with h5py.File(state / "state.weights.h5", "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return json.loads((state / "meta.json").read_text()), arrays


def backup_epoch(folder):
    pointer = folder / "backup" / "latest"
    if not pointer.is_file():
        return 0
    return json.loads((folder / "backup" / pointer.read_text().strip() / "meta.json").read_text())["epoch"]


def optimizer_part(arrays):
    return {k: v for k, v in arrays.items() if k.startswith("optimizer")}


def test_killed_after_warmup_resumes_with_the_same_lr_and_optimizer_state(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    data = tmp_path / "data"
    first = run(straight, *ARGS, "run_name=r", f"demo_data_dir='{data}'")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *TINY, *ARGS, "run_name=r",
                                f"demo_data_dir='{data}'"], cwd=killed, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = killed / "models" / "r"
    deadline = time.time() + 240
    # Kill inside epoch 3, as soon as the backup of 2 finished epochs is in force.
    while time.time() < deadline and process.poll() is None:
        try:
            if backup_epoch(run_dir) == 2:
                break
        except (OSError, ValueError):  # the pointer or meta file is being written
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    meta, at_kill = backup(run_dir)
    assert meta["epoch"] == 2 and not meta["steps_in_epoch"], output[-3000:]
    snapshot = run_dir.parent / "at_kill"
    shutil.copytree(run_dir / "backup", snapshot)

    resumed = run(killed, *ARGS, "run_name=r", f"demo_data_dir='{data}'")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from the backup after epoch 2" in resumed.stdout

    want, got = history(straight / "models" / "r"), history(run_dir)
    assert sorted(got) == sorted(want) == [0, 1, 2]
    # The learning rate of every epoch, past warmup included, is the uninterrupted run's to the last digit.
    assert [got[e]["lr"] for e in range(3)] == [want[e]["lr"] for e in range(3)]
    assert float(want[0]["lr"]) == 0.0 and float(want[1]["lr"]) > 0.0  # epoch 0 is warmup

    # The state the resumed run started from is the one it was killed with: 2 epochs of updates.
    iterations = [v for k, v in optimizer_part(at_kill).items() if "iteration" in k or k.endswith("vars/0")]
    assert int(iterations[0]) == 2 * STEPS
    _, final_straight = backup(straight / "models" / "r")
    _, final_resumed = backup(run_dir)
    assert final_straight.keys() == final_resumed.keys()
    for key, value in final_straight.items():
        np.testing.assert_array_equal(final_resumed[key], value, err_msg=key)
