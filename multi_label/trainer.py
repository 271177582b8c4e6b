"""Training with `model.fit` and callbacks: the whole loop is Keras's own."""

import json
import os
import sys

import keras

from dataset.pipeline import DecodeReport, make_dataset
from multi_label import callbacks as cb
from multi_label.data import load_training_splits
from multi_label.losses import build_loss
from multi_label.model import build_model
from utils.atomic import write_text
from utils.run_folder import prepare_run_folder


def train(config):
    """Trains a model as configured; returns the path of the best checkpoint.

    Running the same command again after a crash or a kill resumes from the last finished epoch.
    """
    train_table, val_table = load_training_splits(config)
    model_dir, log_dir = prepare_run_folder(config)
    keras.utils.set_random_seed(config.seed)
    class_names = train_table.class_names
    write_text(os.path.join(model_dir, "classes.json"), json.dumps(class_names) + "\n")

    train_report = DecodeReport(train_table.images)
    train_ds = make_dataset(train_table.images, train_table.labels, config, training=True, report=train_report)
    val_ds, val_report = None, None
    if val_table is not None:
        val_report = DecodeReport(val_table.images)
        val_ds = make_dataset(val_table.images, val_table.labels, config, training=False, report=val_report)
    steps_per_epoch = len(train_table) // config.batch_size

    model = build_model(config, len(class_names))
    loss = build_loss(config, train_table.labels)
    optimizer, extra_callbacks = build_training_optimizer(config, model, steps_per_epoch)
    model.compile(optimizer=optimizer, loss=loss)

    monitor = "val_mAP" if val_ds is not None else None
    # With EMA on, validation and the saved models use the averaged weights: SwapEMAWeights swaps
    # them in before the callbacks after it and back before the next epoch's training.
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_decay > 0 else []
    callbacks = [
        cb.StopOnNaN(),
        *extra_callbacks,
        *ema,
        cb.ValidationMAP(val_ds, val_report, train_report),
        cb.BestAndLastCheckpoint(model_dir, monitor=monitor),
        # after the checkpoints: once the backup says an epoch is finished, its models are saved
        cb.AtomicBackupAndRestore(os.path.join(model_dir, "backup"), extra_state=lambda: run_state(loss, ema),
                                  restore_extra_state=lambda state: restore_run_state(loss, ema, state)),
        keras.callbacks.CSVLogger(os.path.join(model_dir, "history.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
    ]
    print(f"Training {model.name} on {len(train_table)} images, {len(class_names)} classes, "
          f"{steps_per_epoch} steps per epoch; run folder {model_dir}")
    model.fit(train_ds, epochs=config.epochs, callbacks=callbacks, shuffle=False,
              verbose=1 if sys.stdout.isatty() else 2)
    best = os.path.join(model_dir, "best.keras")
    print(f"Finished {config.epochs} epochs; best model: {best}")
    return best


def run_state(loss, ema):
    """State outside the model weights that a resumed run needs, as JSON.

    The loss's variables (GHM's moving bin counts) are not model weights. With EMA, the backup is
    written after SwapEMAWeights put the averaged weights into the model; the swap callback must
    know that after a restart, or it would train on from the averaged weights.
    """
    return {"loss": [v.numpy().tolist() for v in getattr(loss, "variables", [])],
            "ema_in_model": bool(ema and ema[0]._ema_weights_in_model)}


def restore_run_state(loss, ema, state):
    for variable, value in zip(getattr(loss, "variables", []), state["loss"]):
        variable.assign(value)
    if ema:
        ema[0]._ema_weights_in_model = state["ema_in_model"]


def build_training_optimizer(config, model, steps_per_epoch):
    """Returns (optimizer, callbacks) with the learning-rate schedule and weight decay applied."""
    from multi_label.optimizers import build_optimizer
    from multi_label.regularization import apply_weight_decay
    from multi_label.schedules import schedule_callbacks

    apply_weight_decay(model, conv=config.weight_decay_conv, bn_gamma=config.weight_decay_bn_gamma)  # prints its counts
    optimizer = build_optimizer(config, steps_per_epoch, config.batch_size)
    return optimizer, schedule_callbacks(config, optimizer)
