"""Training callbacks: exact validation mAP, best/last checkpoints, NaN stop, crash-safe backup."""

import json
import math
import os
import shutil

import keras
import numpy as np

from multi_label.evaluation import predict_dataset
from utils.atomic import atomic_path, write_text
from utils.metrics import mean_average_precision


class TrainingError(RuntimeError):
    """Training cannot go on; the message says where and what to try."""


class ValidationMAP(keras.callbacks.Callback):
    """Computes the exact mAP over the whole validation set at each epoch end.

    Exact means one ranking of all validation images per class, not an average of per-batch
    values (which is biased for rare classes). The value goes into the epoch logs as `val_mAP`,
    where the checkpoint, TensorBoard and CSV callbacks that come after this one read it.

    Args:
        dataset: tf.data.Dataset. Batches of (images, labels, paths).
        report: DecodeReport or None. Names validation images that failed to decode.
        train_report: DecodeReport or None. Names training images that failed to decode.
    """

    def __init__(self, dataset, report=None, train_report=None):
        super().__init__()
        self.dataset = dataset
        self.report = report
        self.train_report = train_report
        self._announced = set()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.dataset is not None:
            logits, labels, _ = predict_dataset(self.model, self.dataset)
            result = mean_average_precision(labels, logits)
            logs["val_mAP"] = float(result.map)
            print(f"\nEpoch {epoch + 1}: val_mAP = {result.map:.4f} over {len(labels)} images")
        for name, report in (("training", self.train_report), ("validation", self.report)):
            for path in (report.skipped() if report is not None else []):
                if path not in self._announced:
                    self._announced.add(path)
                    print(f"warning: skipped {name} image that failed to decode: {path}")


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
    """

    def __init__(self, backup_dir, extra_state=None, restore_extra_state=None, **kwargs):
        super().__init__(backup_dir, delete_checkpoint=False, double_checkpoint=False, **kwargs)
        self.extra_state = extra_state
        self.restore_extra_state = restore_extra_state
        self._pointer = os.path.join(backup_dir, "latest")

    def restored_epoch(self):
        """The number of finished epochs in the backup (0 when there is none)."""
        meta = self._latest()
        return meta["epoch"] if meta else 0

    def _latest(self):
        if not os.path.isfile(self._pointer):
            return None
        with open(self._pointer) as f:
            name = f.read().strip()
        meta_path = os.path.join(self.backup_dir, name, "meta.json")
        with open(meta_path) as f:
            meta = json.load(f)
        meta["folder"] = os.path.join(self.backup_dir, name)
        return meta

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
        print(f"Resuming from the backup after epoch {meta['epoch']} ({meta['folder']})")

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._latest()
        index = (int(os.path.basename(previous["folder"]).split("-")[1]) + 1) if previous else 1
        name = f"state-{index}"
        folder = os.path.join(self.backup_dir, name)
        shutil.rmtree(folder, ignore_errors=True)  # a folder left by a kill before its pointer moved
        os.makedirs(folder)
        self.model.save_weights(os.path.join(folder, "state.weights.h5"))
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                "extra": self.extra_state() if self.extra_state else None}
        write_text(os.path.join(folder, "meta.json"), json.dumps(meta))
        write_text(self._pointer, name + "\n")
        for old in os.listdir(self.backup_dir):
            if old.startswith("state-") and old != name:
                shutil.rmtree(os.path.join(self.backup_dir, old), ignore_errors=True)


def save_model(model, path):
    """Saves a `.keras` model atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
