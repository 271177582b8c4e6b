"""Training with `model.fit` and callbacks: the whole loop is Keras's own."""

import json
import os
import shutil
import sys

import keras
import tensorflow as tf

from dataset.pipeline import DecodeReport, make_dataset
from dataset.sampling import repeat_factors
from multi_label.training import callbacks as cb
from dataset.splits import load_training_splits, tfrecord_source
from multi_label.training.distribute import build_strategy, distribute_options, is_chief, worker_folder
from multi_label.evaluation.groups import group_targets
from multi_label.losses import build_group_losses, build_loss
from multi_label.model import build_model
from utils.atomic import write_text
from utils.config import ConfigError
from utils.run_folder import prepare_run_folder, run_folders


def train(config):
    """Trains a model as configured; returns the path of the best checkpoint.

    Running the same command again after a crash or a kill resumes from the last backup: the last
    finished epoch, or with `save_every_steps` the last saved step (that epoch then restarts from
    its first batch; learning_notes/07-reliability.md).
    Under `strategy=multi_worker` only the chief writes the run folder; the other workers write
    to a temporary folder, removed at the end, and return None.
    """
    train_table, val_table = load_training_splits(config)
    strategy = build_strategy(config)
    chief = is_chief(strategy)
    model_dir, log_dir = prepare_run_folder(config) if chief else (worker_folder(),) * 2
    keras.utils.set_random_seed(config.seed)
    class_names = train_table.class_names
    write_text(os.path.join(model_dir, "classes.json"), json.dumps(class_names) + "\n")

    global_batch = config.batch_size * strategy.num_replicas_in_sync  # batch_size is per replica
    images_per_epoch = len(train_table)
    if config.repeat_factor_threshold > 0:  # the expected epoch length (stochastic rounding varies it a little)
        images_per_epoch = int(round(repeat_factors(train_table.labels, config.repeat_factor_threshold).sum()))
    steps_per_epoch = images_per_epoch // global_batch
    if steps_per_epoch == 0:
        raise ConfigError(f"train_labels has {len(train_table)} images, fewer than one global batch of "
                          f"{global_batch} (batch_size={config.batch_size} x {strategy.num_replicas_in_sync} "
                          "replicas); lower batch_size")
    backup_dir = os.path.join(run_folders(config)[0], "backup")
    # A resumed run's batches start at its first unfinished epoch, drawn as they would have been.
    train_ds, train_report = input_dataset(config, train_table, training=True, batch_size=global_batch,
                                           first_epoch=cb.finished_epochs(backup_dir), steps_per_epoch=steps_per_epoch)
    train_ds = distribute_options(train_ds)
    val_ds, val_report = (None, None) if val_table is None else input_dataset(config, val_table, training=False)
    if config.groups:  # a groups head has one output, and one loss, per label column
        train_ds = group_targets(train_ds, class_names)

    model, loss, optimizer, extra_callbacks = build_in_scope(config, strategy, train_table, steps_per_epoch,
                                                            global_batch, train_ds.element_spec)

    monitor = ("val_accuracy" if config.groups else "val_mAP") if val_ds is not None else None
    # With EMA on, validation and the saved models use the averaged weights: SwapEMAWeights swaps
    # them in before the callbacks after it and back before the next epoch's training.
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_decay > 0 else []
    backup = cb.AtomicBackupAndRestore(backup_dir,
                                       extra_state=lambda: run_state(loss, ema),
                                       restore_extra_state=lambda state: restore_run_state(loss, ema, state),
                                       write=chief, save_freq=config.save_every_steps or "epoch")
    callbacks = [
        cb.StopOnNaN(),
        *extra_callbacks,
        *ema,
        cb.ValidationMAP(val_ds, val_report, train_report, groups=config.groups),
        cb.BestAndLastCheckpoint(model_dir, monitor=monitor),
        # before the backup: a kill between the two repeats an epoch's row on resume, never loses it
        keras.callbacks.CSVLogger(os.path.join(model_dir, "history.csv"), append=True),
        # after the checkpoints: once the backup says an epoch is finished, its models are saved
        # every worker resumes from the chief's backup (a shared folder), so all start at the same epoch
        backup,
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
        cb.StopOnSignal(backup),  # last: a stop at an epoch end comes after every callback of that epoch
    ]
    print(f"Training {model.name} on {len(train_table)} images, {len(class_names)} classes, "
          f"{steps_per_epoch} steps per epoch of {global_batch} images ({strategy.num_replicas_in_sync} replicas, "
          f"{config.precision}); run folder {model_dir}")
    model.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, shuffle=False,
              verbose=1 if sys.stdout.isatty() else 2)
    if not chief:
        shutil.rmtree(model_dir, ignore_errors=True)
        return None
    best = os.path.join(model_dir, "best.keras")
    print(f"Finished {config.epochs} epochs; best model: {best}")
    if not config.groups:  # thresholds and temperature are for sigmoid outputs
        from multi_label.evaluation.calibration import fit_and_save_calibration
        fit_and_save_calibration(config, best)
    return best


def input_dataset(config, table, training, batch_size=None, first_epoch=0, steps_per_epoch=None):
    """Returns (dataset, DecodeReport) for a label table, from image files or TFRecords.

    `batch_size` (default config.batch_size) is the global batch when training under a strategy;
    `first_epoch` and `steps_per_epoch` are `dataset.pipeline.make_dataset`'s.
    """
    epochs = dict(first_epoch=first_epoch, steps_per_epoch=steps_per_epoch)
    if config.data_format == "tfrecord":
        report = DecodeReport(table.names)  # records carry the paths as written in the label file
        return make_dataset(table.names, table.labels, config, training, batch_size=batch_size, report=report,
                            encoded=tfrecord_source(config, table), **epochs), report
    report = DecodeReport(table.images)
    return make_dataset(table.images, table.labels, config, training, batch_size=batch_size, report=report,
                        **epochs), report


def build_in_scope(config, strategy, train_table, steps_per_epoch, global_batch, batch_spec):
    """Returns (model, loss, optimizer, callbacks), compiled, with every variable made by `strategy`.

    The precision policy applies to the layers built here only; the global policy is put back so
    that later models of this process (tests, tools) are unaffected. Keras wraps the optimizer in
    a LossScaleOptimizer by itself for mixed_float16.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        with strategy.scope():
            class_names = train_table.class_names
            model = build_model(config, len(class_names), train_labels=train_table.labels, class_names=class_names)
            loss = (build_group_losses(config, config.groups) if config.groups
                    else build_loss(config, train_table.labels))
            optimizer, callbacks = build_training_optimizer(config, model, steps_per_epoch, global_batch)
            model.compile(optimizer=optimizer, loss=loss, jit_compile=config.jit_compile,
                          steps_per_execution=config.steps_per_execution)
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                # Keras 3.15's fit builds the compiled loss and the optimizer from a first distributed
                # batch that it averages with strategy.reduce, which fails under this strategy (it
                # cannot reduce a tuple of PerReplica values). Built here from the batch's spec
                # instead, and fit's own build step is skipped.
                model._symbolic_build(data_batch=batch_spec)
                model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
                # It also averages the step's logs across workers over axis 0, which fails on the
                # scalar logs; given as [1] vectors, they average to the global values.
                train_step = model.train_step
                model.train_step = lambda data: {key: tf.reshape(value, [1]) for key, value in train_step(data).items()}
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model, loss, optimizer, callbacks


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


def build_training_optimizer(config, model, steps_per_epoch, batch_size=None):
    """Returns (optimizer, callbacks) with the learning-rate schedule, weight decay and fine-tuning controls.

    `batch_size` (default config.batch_size) is the global batch that `scale_lr_with_batch` scales lr by.
    """
    from multi_label.optim.finetune import fine_tuning_callbacks
    from multi_label.optim.optimizers import build_optimizer
    from multi_label.optim.weight_decay import apply_weight_decay
    from multi_label.optim.schedules import schedule_callbacks

    apply_weight_decay(model, conv=config.weight_decay_conv, bn_gamma=config.weight_decay_bn_gamma)  # prints its counts
    optimizer = build_optimizer(config, steps_per_epoch, batch_size or config.batch_size)
    monitor = "val_accuracy" if config.groups else "val_mAP"
    callbacks = schedule_callbacks(config, optimizer, monitor=monitor) + fine_tuning_callbacks(config, model, optimizer)
    return optimizer, callbacks
