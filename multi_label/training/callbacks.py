"""Training callbacks: exact validation mAP, best/last checkpoints, NaN stop, progress lines; the run's list."""

import json
import math
import os
import time

import keras

from multi_label.evaluation.group_metrics import evaluate_groups, predict_groups
from multi_label.evaluation.inference import predict_dataset
from multi_label.evaluation.metrics import mean_average_precision
from multi_label.losses import epoch_dependent_losses
from multi_label.training.backup import AtomicBackupAndRestore
from multi_label.training.early_stopping import EarlyStoppingOnBest
from multi_label.training.errors import TrainingError, checkpoint_write
from multi_label.training.run_state import restore_run_state, run_state
from multi_label.training.signals import StopOnSignal
from utils.atomic import atomic_path, write_text


def validation_metric(groups):
    """The epoch-log key that ValidationMAP writes and the best checkpoint monitors.

    Args:
        groups: dict[str, int] or None. The attribute groups of a `groups` head.
    """
    return "val_accuracy" if groups else "val_mAP"


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

    @property
    def monitor(self):
        """str or None. The log key to monitor for the best model; None without a validation set."""
        return validation_metric(self.groups) if self.dataset is not None else None

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
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {previous} to {value:.4f}; "
                      f"saved {self.best_path}")


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


class LossEpoch(keras.callbacks.Callback):
    """Tells the losses whose terms change with the epoch (SPLC, LL-R) which epoch begins.

    The epoch is the index `model.fit` passes, which a resumed fit starts at its first unfinished
    epoch (the backup's `initial_epoch`), so a resumed run computes the losses an uninterrupted
    one did.

    Args:
        losses: list[multi_label.losses.EpochDependent]. The losses to tell.
    """

    def __init__(self, losses):
        super().__init__()
        self.losses = list(losses)

    def on_epoch_begin(self, epoch, logs=None):
        for loss in self.losses:
            loss.set_epoch(epoch)


# Outside a terminal Keras prints one line per epoch (verbose=2); within a long epoch, ProgressLines
# adds one this often, so a CI log or a nohup file shows the run is alive and how fast it goes.
PROGRESS_INTERVAL_S = 180


class ProgressLines(keras.callbacks.Callback):
    """A line every `interval` seconds within an epoch: step/steps, images per second, the running loss.

    For output that is not a terminal, where Keras shows no progress bar. The loss is Keras's
    running mean over the epoch so far.

    Args:
        steps: int. Steps per epoch.
        batch_size: int. Images per step (the global batch).
        interval: float or None. Seconds between lines; None: PROGRESS_INTERVAL_S.
    """

    def __init__(self, steps, batch_size, interval=None):
        super().__init__()
        self.steps = steps
        self.batch_size = batch_size
        self.interval = PROGRESS_INTERVAL_S if interval is None else interval
        self.epoch = 0
        self.start = self.last = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.start = epoch, time.monotonic()
        self.last = self.start

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self.last < self.interval or batch + 1 >= self.steps:  # the epoch's own line comes next
            return
        self.last = now
        loss = (logs or {}).get("loss")
        loss_text = "" if loss is None else f", loss {float(loss):.4f}"
        elapsed = now - self.start
        print(f"Epoch {self.epoch + 1}: step {batch + 1}/{self.steps}, {(batch + 1) * self.batch_size / elapsed:.1f} "
              f"images/s{loss_text}, {elapsed / 60:.1f} min into the epoch", flush=True)


def save_model(model, path):
    """Saves a `.keras` model atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def training_callbacks(model_dir, log_dir, backup_dir, loss, validation, extra=(), ema_decay=0.0,
                       save_every_steps=0, write=True, progress=None, early_stopping_patience=0):
    """Returns the callbacks of a training run, in the order they must run.

    Args:
        model_dir: str. The run's model folder (checkpoints, history.csv); a temporary one on a
            non-chief worker.
        log_dir: str. The run's TensorBoard folder; likewise.
        backup_dir: str. The chief's backup folder, which every worker restores from.
        loss: keras.losses.Loss or dict[str, keras.losses.Loss]. The compiled loss or losses,
            whose state the backup keeps.
        validation: ValidationMAP. Writes the value that the best checkpoint monitors.
        extra: list[keras.callbacks.Callback]. The optimizer's (schedule, fine-tuning); they run
            after the NaN stop and before the callbacks that read the epoch's logs.
        ema_decay: float. Above 0, validation and the saved models use the averaged weights.
        save_every_steps: int. Also back up every this many steps within an epoch; 0: at epoch ends only.
        write: bool. False on a non-chief worker (see AtomicBackupAndRestore).
        progress: ProgressLines or None. Progress lines within an epoch (output that is not a terminal).
        early_stopping_patience: int. End after this many epochs without a better validation mAP; 0: off.
    """
    # With EMA on, validation and the saved models use the averaged weights: SwapEMAWeights swaps
    # them in before the callbacks after it and back before the next epoch's training.
    ema = keras.callbacks.SwapEMAWeights(swap_on_epoch=True) if ema_decay > 0 else None
    backup = AtomicBackupAndRestore(backup_dir, extra_state=lambda: run_state(loss, ema),
                                    restore_extra_state=lambda state: restore_run_state(loss, ema, state),
                                    write=write, save_freq=save_every_steps or "epoch")
    epoch_losses = epoch_dependent_losses(loss)
    return [
        *([LossEpoch(epoch_losses)] if epoch_losses else []),  # first: every step of the epoch reads it
        StopOnNaN(),
        *([] if progress is None else [progress]),
        *extra,
        *([] if ema is None else [ema]),
        validation,
        BestAndLastCheckpoint(model_dir, monitor=validation.monitor),
        # before the backup: a kill between the two repeats an epoch's row on resume, never loses it
        keras.callbacks.CSVLogger(os.path.join(model_dir, "history.csv"), append=True),
        # after the checkpoints: once the backup says an epoch is finished, its models are saved;
        # every worker resumes from the chief's backup (a shared folder), so all start at the same epoch
        backup,
        # after the checkpoint (this epoch's best.json) and the backup (the epoch is finished)
        *([EarlyStoppingOnBest(model_dir, early_stopping_patience)] if early_stopping_patience > 0 else []),
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
        StopOnSignal(backup),  # last: a stop at an epoch end comes after every callback of that epoch
    ]
