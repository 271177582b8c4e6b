"""A run killed after its warmup and resumed continues with the learning rate, optimizer state and weights it
would have had; the state outside the weights (every loss's, the EMA swap's) comes back too."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import ROOT
from test_end_to_end import TINY, run

# 280 training images / 16 = 17 steps per epoch: epoch 3 lasts long enough to be killed inside it.
ARGS = ["epochs=3", "warmup_epochs=1", "deterministic=True", "demo_images=400", "val_labels=''",
        "test_labels=''", "optimizer='radam'", "weight_decay=0.01", "ema_decay=0.9", "color_jitter=0.2"]
STEPS = 280 // 16


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


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run that both killed runs are compared with."""
    folder = tmp_path_factory.mktemp("straight")
    first = run(folder, *ARGS, "run_name=r")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return folder / "models" / "r"


def kill_when(folder, args, ready):
    """Starts the run, SIGKILLs it once `ready(backup meta)` holds, and returns the backup in force then."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *TINY, *args], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = folder / "models" / "r"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        try:
            if (run_dir / "backup" / "latest").is_file() and ready(backup(run_dir)[0]):
                break
        except (OSError, ValueError, KeyError):  # the pointer or meta file is being written
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0]
    meta, at_kill = backup(run_dir)
    assert ready(meta), output[-3000:]
    return meta, at_kill


def assert_same_as_straight(straight, run_dir, at_kill, killed_after_steps):
    """The resumed run ends with the uninterrupted run's learning rates, step count, weights, moments and EMA."""
    want, got = history(straight), history(run_dir)
    assert sorted(got) == sorted(want) == [0, 1, 2]
    # The learning rate of every epoch, past warmup included, is the uninterrupted run's to the last digit.
    assert [got[e]["lr"] for e in range(3)] == [want[e]["lr"] for e in range(3)]
    assert 0.0 < float(want[0]["lr"]) < float(want[1]["lr"])  # epoch 0 is warmup (its first step's rate)
    _, final_straight = backup(straight)
    _, final_resumed = backup(run_dir)
    assert final_straight.keys() == final_resumed.keys()
    # The resumed run started from the state it was killed with and ends with as many updates as the
    # uninterrupted run: no batch was trained twice.
    counter = [k for k in final_straight if k.startswith("optimizer") and final_straight[k].shape == ()][0]
    assert int(final_straight[counter]) == 3 * STEPS
    assert int(at_kill[counter]) == killed_after_steps and int(final_resumed[counter]) == 3 * STEPS
    # The resumed epoch 3 saw the very batches and augmentation draws of the uninterrupted run's
    # epoch 3 (they are drawn from the seed and the epoch number): weights, moments and EMA agree.
    worst = max(float(np.max(np.abs(final_resumed[k] - final_straight[k]))) for k in final_straight)
    for key in final_straight:
        np.testing.assert_allclose(final_resumed[key], final_straight[key], rtol=1e-5, atol=1e-6, err_msg=key)
    print(f"largest difference after resume: {worst:.3g}")


@pytest.mark.slow  # two training runs through run.py and the shared uninterrupted one: about 2 minutes on 2 cores
def test_killed_after_warmup_resumes_with_the_same_lr_and_optimizer_state(tmp_path, straight):
    # Killed inside epoch 3, as soon as the backup of 2 finished epochs is in force.
    meta, at_kill = kill_when(tmp_path, [*ARGS, "run_name=r"], lambda m: m["epoch"] == 2)
    assert not meta["steps_in_epoch"]
    resumed = run(tmp_path, *ARGS, "run_name=r")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from the backup after epoch 2" in resumed.stdout
    assert_same_as_straight(straight, tmp_path / "models" / "r", at_kill, 2 * STEPS)


@pytest.mark.slow  # two training runs through run.py (the uninterrupted one is shared): about a minute
def test_killed_mid_epoch_resumes_at_the_next_batch_and_ends_where_an_uninterrupted_run_does(tmp_path, straight):
    # save_every_steps=5 backs up inside epoch 3 (save_every_steps does not change what is trained)
    args = [*ARGS, "run_name=r", "save_every_steps=5"]
    meta, at_kill = kill_when(tmp_path, args, lambda m: m["epoch"] == 2 and 0 < m["steps_in_epoch"] < STEPS)
    done = meta["steps_in_epoch"]
    resumed = run(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (f"Resuming from the backup after epoch 2 and {done} steps of epoch 3; epoch 3 goes on from batch "
            f"{done + 1}") in resumed.stdout
    assert_same_as_straight(straight, tmp_path / "models" / "r", at_kill, 2 * STEPS + done)


def group_losses(first=None, second=None):
    from multi_label.losses import SoftmaxGHM

    return {"colour": SoftmaxGHM(bins=4, accumulated_counts=first, name="colour_ghm"),
            "shape": SoftmaxGHM(bins=4, accumulated_counts=second, name="shape_ghm")}


def test_run_state_keeps_the_ghm_counts_of_every_group_loss():
    from multi_label.training.run_state import restore_run_state, run_state

    saved = group_losses([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])
    state = json.loads(json.dumps(run_state(saved)))  # as the backup's meta.json holds it
    assert state == {"loss": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], "ema_in_model": False}
    resumed = group_losses()
    restore_run_state(resumed, None, state)
    assert [loss.accumulated_counts.tolist() for loss in resumed.values()] == state["loss"]


def test_backup_of_a_groups_run_restores_every_group_loss(tmp_path):
    import keras

    from multi_label.training.backup import AtomicBackupAndRestore
    from multi_label.training.callbacks import ValidationMAP, training_callbacks

    def callbacks(losses):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        found = training_callbacks(str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path / "backup"), losses,
                                   ValidationMAP(None))
        backup = next(c for c in found if isinstance(c, AtomicBackupAndRestore))
        backup.set_model(model)
        return backup

    callbacks(group_losses([1.0, 0.0, 0.0, 2.0], [0.0, 3.0, 4.0, 0.0])).on_epoch_end(0)
    resumed = group_losses()
    callbacks(resumed).on_train_begin()
    assert [loss.accumulated_counts.tolist() for loss in resumed.values()] == [[1.0, 0.0, 0.0, 2.0],
                                                                               [0.0, 3.0, 4.0, 0.0]]
