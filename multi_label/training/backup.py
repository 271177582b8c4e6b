"""The crash-safe backup of the training state: a run killed at any moment resumes from the last complete one."""

import json
import os
import shutil
import tempfile

import keras

from multi_label.keras_internals import (
    backup_position,
    route_backup_saves,
    set_backup_position,
    set_initial_epoch,
    skip_next_step,
)
from multi_label.training.errors import checkpoint_write
from utils.atomic import write_text


def latest_backup(backup_dir):
    """The meta dict of the backup in force in `backup_dir` (with its "folder"), or None."""
    pointer = os.path.join(backup_dir, "latest")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    with open(os.path.join(backup_dir, name, "meta.json")) as f:
        meta = json.load(f)
    meta["folder"] = os.path.join(backup_dir, name)
    return meta


def finished_epochs(backup_dir):
    """The number of finished epochs that a run resuming from `backup_dir` starts after (0 without a backup)."""
    meta = latest_backup(backup_dir)
    return meta["epoch"] if meta else 0


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore with crash-safe writes.

    Keras writes the weights file and then the epoch counter in place; a kill between the two, or
    during either, leaves a torn or mismatched pair. Here each backup is a new folder holding both
    (`state-<n>/`), and a one-line pointer file `latest` is renamed into place last: a kill at any
    moment leaves the previous complete backup in force. Older folders are removed after the
    pointer moves on. Keras still decides when to save (`save_freq`).

    Args:
        backup_dir: str. Folder for the backups.
        extra_state: callable or None. Returns a JSON-serialisable dict saved with each backup
            (state that lives outside the model weights).
        restore_extra_state: callable or None. Receives that dict on restore.
        write: bool. False for a non-chief worker of a multi-worker run: it restores from the
            chief's backups (a shared folder) so that all workers resume at the same epoch, and
            saves its own into a temporary folder that it deletes (saving reads variables that the
            workers may have to read together).
    """

    def __init__(self, backup_dir, extra_state=None, restore_extra_state=None, write=True, **kwargs):
        super().__init__(backup_dir, delete_checkpoint=False, double_checkpoint=False, **kwargs)
        self.extra_state = extra_state
        self.restore_extra_state = restore_extra_state
        self.write = write
        self._pointer = os.path.join(backup_dir, "latest")
        self._steps_in_epoch = 0
        self._skip = 0  # batches of the resumed epoch still to draw without training
        route_backup_saves(self, self.save)

    def restored_epoch(self):
        """The number of finished epochs in the backup (0 when there is none)."""
        return finished_epochs(self.backup_dir)

    def on_train_begin(self, logs=None):
        meta = latest_backup(self.backup_dir)
        if meta is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(meta["folder"], "state.weights.h5"))
        set_initial_epoch(self.model, meta["epoch"])
        steps = meta.get("steps_in_epoch", 0)
        set_backup_position(self, meta["epoch"], max(steps - 1, 0))
        if self.restore_extra_state is not None and meta.get("extra") is not None:
            self.restore_extra_state(meta["extra"])
        if steps:  # a mid-epoch backup: the weights after `steps` steps of the next epoch
            epoch = meta["epoch"] + 1
            self._skip = steps
            print(f"Resuming from the backup after epoch {meta['epoch']} and {steps} steps of epoch {epoch}; "
                  f"epoch {epoch} goes on from batch {steps + 1} ({meta['folder']})")
        else:
            print(f"Resuming from the backup after epoch {meta['epoch']} ({meta['folder']})")

    def on_epoch_begin(self, epoch, logs=None):
        self._steps_in_epoch = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._skip:  # the batches of the resumed epoch trained before the backup: drawn, not trained again
            skip_next_step(self.model, min(self.model.steps_per_execution, self._skip))

    def on_train_batch_end(self, batch, logs=None):
        self._steps_in_epoch = batch + 1  # Keras passes the last batch of a steps_per_execution group
        if self._skip:  # counted towards the next save_freq save as in the uninterrupted run: not at all
            self._skip = max(self._skip - self.model.steps_per_execution, 0)
            return
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._steps_in_epoch = 0
        self._skip = 0
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":  # Keras saves only every save_freq steps then; a finished epoch is saved too
            self.save()

    def save(self):
        """Writes a backup of the state now (Keras calls it when `save_freq` says so; StopOnSignal on a signal)."""
        if not self.write:
            with tempfile.TemporaryDirectory(prefix="workertemp_backup_") as folder:
                self.model.save_weights(os.path.join(folder, "state.weights.h5"))
                if self.extra_state:
                    self.extra_state()
            return
        with checkpoint_write(self.backup_dir):
            self._write_backup()

    def _write_backup(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = latest_backup(self.backup_dir)
        index = (int(os.path.basename(previous["folder"]).split("-")[1]) + 1) if previous else 1
        name = f"state-{index}"
        folder = os.path.join(self.backup_dir, name)
        shutil.rmtree(folder, ignore_errors=True)  # a folder left by a kill before its pointer moved
        os.makedirs(folder)
        self.model.save_weights(os.path.join(folder, "state.weights.h5"))
        epoch, batch = backup_position(self)
        meta = {"epoch": epoch, "batch": batch, "steps_in_epoch": self._steps_in_epoch,
                "extra": self.extra_state() if self.extra_state else None}
        write_text(os.path.join(folder, "meta.json"), json.dumps(meta))
        write_text(self._pointer, name + "\n")
        for old in os.listdir(self.backup_dir):
            if old.startswith("state-") and old != name:
                shutil.rmtree(os.path.join(self.backup_dir, old), ignore_errors=True)
