"""Training callbacks: exact validation mAP, best/last checkpoints, NaN stop, crash-safe backup."""

import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading

import keras
import numpy as np

from multi_label.evaluation.inference import predict_dataset
from multi_label.evaluation.groups import evaluate_groups, predict_groups
from utils.atomic import atomic_path, write_text
from multi_label.evaluation.metrics import mean_average_precision


class TrainingError(RuntimeError):
    """Training cannot go on; the message says where and what to try."""


class TrainingInterrupted(TrainingError):
    """SIGINT or SIGTERM stopped training after saving the backup; `exit_code` is 128 + the signal number."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def checkpoint_write(path):
    """Turns a failed checkpoint write (full disk, lost mount, no permission) into a one-line TrainingError.

    Every checkpoint file is written to a temporary file and renamed, so the previous one is intact.
    """
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise TrainingError(f"cannot write {path}: {reason}; the last good checkpoint and backup are kept. Free disk "
                            "space (or fix the folder) and run the same command to resume") from None


class ValidationMAP(keras.callbacks.Callback):
    """Computes the exact mAP over the whole validation set at each epoch end.

    Exact means one ranking of all validation images per class, not an average of per-batch
    values (which is biased for rare classes). The value goes into the epoch logs as `val_mAP`,
    where the checkpoint, TensorBoard and CSV callbacks that come after this one read it.

    For a `groups` head (one softmax per attribute group) mAP does not apply: the callback logs
    each group's accuracy over its known labels as `val_<group>_accuracy` and their mean as
    `val_accuracy`, the value the checkpoint then monitors.

    Args:
        dataset: tf.data.Dataset. Batches of (images, labels, paths).
        report: DecodeReport or None. Names validation images that failed to decode.
        train_report: DecodeReport or None. Names training images that failed to decode.
        groups: dict[str, int] or None. The attribute groups of a `groups` head.
    """

    def __init__(self, dataset, report=None, train_report=None, groups=None):
        super().__init__()
        self.dataset = dataset
        self.report = report
        self.train_report = train_report
        self.groups = groups
        self._announced = set()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.dataset is not None and self.groups:
            self._log_group_accuracy(epoch, logs)
        elif self.dataset is not None:
            logits, labels, _ = predict_dataset(self.model, self.dataset)
            result = mean_average_precision(labels, logits)
            logs["val_mAP"] = float(result.map)
            print(f"\nEpoch {epoch + 1}: val_mAP = {result.map:.4f} over {len(labels)} images")
        for name, report in (("training", self.train_report), ("validation", self.report)):
            for path in (report.skipped() if report is not None else []):
                if path not in self._announced:
                    self._announced.add(path)
                    print(f"warning: skipped {name} image that failed to decode: {path}")

    def _log_group_accuracy(self, epoch, logs):
        logits, labels, _ = predict_groups(self.model, self.dataset, list(self.groups))
        result = evaluate_groups(labels, logits, self.groups)
        for name, group in result["groups"].items():
            if group["accuracy"] is not None:
                logs[f"val_{name}_accuracy"] = group["accuracy"]
        if result["accuracy"] is not None:
            logs["val_accuracy"] = result["accuracy"]
        parts = ", ".join(f"{name} {g['accuracy']:.4f}" for name, g in result["groups"].items()
                          if g["accuracy"] is not None)
        mean = "n/a (no known labels)" if result["accuracy"] is None else f"{result['accuracy']:.4f}"
        print(f"\nEpoch {epoch + 1}: val_accuracy = {mean} over {len(labels)} images ({parts})")


class BestAndLastCheckpoint(keras.callbacks.Callback):
    """Saves `last.keras` every epoch and `best.keras` when the monitored value improves.

    Both are written to a temporary file and renamed into place, so a kill leaves the old or the
    new model, never a torn one. The best score lives in `best.json` beside the model, so a resumed
    run replaces the best model only with a better one.

    Args:
        folder: str. Run folder.
        monitor: str or None. Log key to maximise; None saves every epoch as best.
    """

    def __init__(self, folder, monitor="val_mAP"):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best_path = os.path.join(folder, "best.keras")
        self.state_path = os.path.join(folder, "best.json")

    def best_score(self):
        if not os.path.isfile(self.state_path):
            return None
        with open(self.state_path) as f:
            return json.load(f)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with checkpoint_write(self.folder):
            self._save(epoch, logs)

    def _save(self, epoch, logs):
        save_model(self.model, os.path.join(self.folder, "last.keras"))
        value = logs.get(self.monitor) if self.monitor else None
        best = self.best_score()
        if self.monitor and value is None:
            return
        if best is None or value is None or value > best["value"]:
            save_model(self.model, self.best_path)
            write_text(self.state_path, json.dumps({"epoch": epoch + 1, "monitor": self.monitor, "value": value}))
            if value is not None:
                previous = "none" if best is None else f"{best['value']:.4f}"
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {previous} to {value:.4f}; saved {self.best_path}")


class StopOnNaN(keras.callbacks.Callback):
    """Stops training with a clear message when the loss becomes NaN or infinite.

    The backup and checkpoints of the last finished epoch are untouched, so nothing is lost.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(
                f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}; the last finished "
                "epoch's checkpoints are kept. Try a lower lr, a longer warmup_epochs, or check the labels "
                "(mode=check)")


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
    pointer moves on.

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

    def restored_epoch(self):
        """The number of finished epochs in the backup (0 when there is none)."""
        return finished_epochs(self.backup_dir)

    def _latest(self):
        return latest_backup(self.backup_dir)

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        meta = self._latest()
        if meta is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(meta["folder"], "state.weights.h5"))
        self.model._initial_epoch = meta["epoch"]
        self._current_epoch = meta["epoch"]
        if self.restore_extra_state is not None and meta.get("extra") is not None:
            self.restore_extra_state(meta["extra"])
        steps = meta.get("steps_in_epoch", 0)
        if steps:  # a mid-epoch backup: the weights after `steps` steps; the epoch is trained again from its start
            epoch = meta["epoch"] + 1
            print(f"Resuming from the backup after epoch {meta['epoch']} and {steps} steps of epoch {epoch}; "
                  f"epoch {epoch} restarts from its first batch ({meta['folder']})")
        else:
            print(f"Resuming from the backup after epoch {meta['epoch']} ({meta['folder']})")

    def on_epoch_begin(self, epoch, logs=None):
        self._steps_in_epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps_in_epoch = batch + 1  # Keras passes the last batch of a steps_per_execution group
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._steps_in_epoch = 0
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":  # Keras saves only every save_freq steps then; a finished epoch is saved too
            self._save_model()

    def _save_model(self):
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
        previous = self._latest()
        index = (int(os.path.basename(previous["folder"]).split("-")[1]) + 1) if previous else 1
        name = f"state-{index}"
        folder = os.path.join(self.backup_dir, name)
        shutil.rmtree(folder, ignore_errors=True)  # a folder left by a kill before its pointer moved
        os.makedirs(folder)
        self.model.save_weights(os.path.join(folder, "state.weights.h5"))
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                "steps_in_epoch": getattr(self, "_steps_in_epoch", 0),
                "extra": self.extra_state() if self.extra_state else None}
        write_text(os.path.join(folder, "meta.json"), json.dumps(meta))
        write_text(self._pointer, name + "\n")
        for old in os.listdir(self.backup_dir):
            if old.startswith("state-") and old != name:
                shutil.rmtree(os.path.join(self.backup_dir, old), ignore_errors=True)


class StopOnSignal(keras.callbacks.Callback):
    """On SIGINT or SIGTERM, finishes the current step, writes the backup and stops with the resume command.

    The handler only sets a flag, so a signal during validation or a checkpoint write lets that
    write finish; the stop happens at the next step or epoch end. A second signal acts at once
    (the previous handlers are back in place after the first). Goes after the backup callback.

    Args:
        backup: AtomicBackupAndRestore. Writes the resumable state.
    """

    def __init__(self, backup):
        super().__init__()
        self.backup = backup
        self.received = None
        self._previous = {}

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number, frame):
        self.received = number
        self._restore_handlers()
        print(f"\nReceived {signal.Signals(number).name}: saving the backup after this step", flush=True)

    def _restore_handlers(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.backup._save_model()  # a mid-epoch backup (the epoch restarts from its first batch on resume)
            self._stop()

    def on_epoch_end(self, epoch, logs=None):
        if self.received is not None:  # the backup callback before this one has saved the finished epoch
            self._stop()

    def on_train_end(self, logs=None):
        self._restore_handlers()

    def _stop(self):
        name = signal.Signals(self.received).name
        command = shlex.join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "the same command"
        raise TrainingInterrupted(f"training stopped by {name}; the backup is saved in {self.backup.backup_dir}; "
                                  f"resume with: {command}", exit_code=128 + self.received)


def save_model(model, path):
    """Saves a `.keras` model atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
