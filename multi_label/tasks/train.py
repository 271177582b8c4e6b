"""mode=train: training with `model.fit` and callbacks (the whole loop is Keras's own), then the test mode."""

import dataclasses
import json
import os
import shutil
import sys

from dataset.run_splits import load_split, load_training_splits
from multi_label.calibration import fit_and_save_calibration
from multi_label.evaluation.group_metrics import group_targets
from multi_label.losses import build_group_losses, build_loss
from multi_label.model import build_model
from multi_label.optim.finetune import fine_tuning_callbacks
from multi_label.optim.optimizers import build_optimizer
from multi_label.optim.schedule_callbacks import schedule_callbacks
from multi_label.optim.weight_decay import apply_weight_decay
from multi_label.tasks.inputs import encoded_images, input_dataset, with_image_cache
from multi_label.tasks.settings import (
    loss_settings,
    model_settings,
    optimizer_settings,
    pipeline_settings,
    schedule_settings,
    split_settings,
)
from multi_label.tasks.test import run_test
from multi_label.training.backup import finished_epochs
from multi_label.training.balanced_stage import BalancedStageStart, head_layers
from multi_label.training.callbacks import ProgressLines, ValidationMAP, training_callbacks, validation_metric
from multi_label.training.distribute import (
    build_for_strategy,
    build_strategy,
    distribute_options,
    is_chief,
    training_scope,
    worker_folder,
)
from multi_label.training.early_stopping import stopped_early
from multi_label.training.epochs import steps_per_epoch
from multi_label.training.mixed_precision import resolve_precision
from utils.atomic import write_text
from utils.run_folder import changed_settings, prepare_run_folder, run_folders, saved_settings


def run_train(config):
    """Trains as configured; then, when `test_labels` is set, tests the best model (`checkpoint` if set).

    A non-chief worker of a multi-worker run writes no reports, so it does not test.
    """
    best = train(config)
    if config.test_labels and best is not None:
        run_test(dataclasses.replace(config, checkpoint=config.checkpoint or best))
        print_rarest_classes_map(config)


def print_rarest_classes_map(config, count=5):
    """One line after the test: the mean test AP of the `count` classes rarest in train_labels (the long tail)."""
    from multi_label.evaluation.report import rarest_classes_map  # the report's module loads matplotlib

    path = os.path.join(run_folders(config.run_name)[0], "metrics.json")
    if config.groups or not os.path.isfile(path):  # a groups head's test gives accuracies, not APs
        return
    train_table = load_split(split_settings(config), "train_labels")
    with open(path) as f:
        metrics = json.load(f)
    rare, mean = rarest_classes_map(metrics["AP"], train_table.class_names, train_table.labels, count)
    if mean is not None:
        names = ", ".join(f"{name} {positives}" for name, positives in rare)
        print(f"Test mAP of the {len(rare)} rarest training classes (training positives: {names}): {mean:.4f} "
              f"(all classes: {metrics['mAP']:.4f})")


def train(config):
    """Trains a model as configured; returns the path of the best checkpoint.

    Running the same command again after a crash or a kill resumes from the last backup: the last
    finished epoch, or with `save_every_steps` the last saved step (that epoch then goes on from
    the next batch; learning_notes/07-reliability.md).
    Under `strategy=multi_worker` only the chief writes the run folder; the other workers write
    to a temporary folder, removed at the end, and return None. The caller seeds the random
    generators first (run.py does, with `seed`).
    """
    train_table, val_table = load_training_splits(split_settings(config))
    config = with_precision_chosen(config)
    strategy = build_strategy(config.strategy)
    chief = is_chief(strategy)
    model_dir, log_dir = (prepare_run_folder(config.run_name, dataclasses.asdict(config), config.overwrite)
                          if chief else (worker_folder(),) * 2)
    class_names = train_table.class_names
    write_text(os.path.join(model_dir, "classes.json"), json.dumps(class_names) + "\n")

    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas  # batch_size is per replica
    steps = steps_per_epoch(train_table.labels, config.batch_size, replicas, config.repeat_factor_threshold,
                            config.steps_per_execution)
    backup_dir = os.path.join(run_folders(config.run_name)[0], "backup")
    config = with_image_cache(config, [train_table, val_table])  # checked before any image is read
    # A resumed run's batches start at its first unfinished epoch, drawn as they would have been.
    train_ds, train_report = training_dataset(config, train_table, global_batch, finished_epochs(backup_dir), steps)
    val_ds, val_report = (None, None) if val_table is None else input_dataset(config, val_table, training=False)

    with training_scope(strategy, config.precision):  # every variable made by the strategy
        model = build_model(model_settings(config), len(class_names), train_labels=train_table.labels,
                            class_names=class_names)
        loss = (build_group_losses(loss_settings(config), config.groups) if config.groups
                else build_loss(loss_settings(config), train_table.labels))
        optimizer, extra_callbacks = build_training_optimizer(config, model, steps, global_batch, backup_dir)
        model.compile(optimizer=optimizer, loss=loss, jit_compile=config.jit_compile,
                      steps_per_execution=config.steps_per_execution)
        build_for_strategy(model, strategy, train_ds.element_spec)

    validation = ValidationMAP(val_ds, val_report, train_report, groups=config.groups)
    terminal = sys.stdout.isatty()  # a progress bar; else one line per epoch and ProgressLines within it
    callbacks = training_callbacks(model_dir, log_dir, backup_dir, loss, validation, extra=extra_callbacks,
                                   ema_decay=config.ema_decay, save_every_steps=config.save_every_steps, write=chief,
                                   progress=None if terminal else ProgressLines(steps, global_batch),
                                   early_stopping_patience=config.early_stopping_patience)
    print(f"Training {model.name} on {len(train_table)} images, {len(class_names)} classes, "
          f"{steps} steps per epoch of {global_batch} images ({replicas} replicas, "
          f"{config.precision}); run folder {model_dir}")
    fit_unless_stopped(model, train_ds, config, steps, callbacks, model_dir, backup_dir, verbose=1 if terminal else 2)
    if not chief:
        shutil.rmtree(model_dir, ignore_errors=True)
        return None
    best = os.path.join(model_dir, "best.keras")
    print(f"Finished {finished_epochs(backup_dir)} of {total_epochs(config)} epochs; best model: {best}")
    if not config.groups:  # thresholds and temperature are for sigmoid outputs
        encoded = None if val_table is None else encoded_images(config, val_table)
        fit_and_save_calibration(best, val_table, pipeline_settings(config), threshold=config.threshold,
                                 encoded=encoded)
    return best


def fit_unless_stopped(model, train_ds, config, steps, callbacks, model_dir, backup_dir, verbose):
    """`model.fit` for the epochs left, unless the run has already met its early-stopping condition."""
    if stopped_early(model_dir, finished_epochs(backup_dir), config.early_stopping_patience):
        print(f"The run stopped early before (early_stopping_patience={config.early_stopping_patience}); "
              "nothing more to train")
        return
    model.fit(train_ds, epochs=total_epochs(config), steps_per_epoch=steps, callbacks=callbacks, shuffle=False,
              verbose=verbose)


def total_epochs(config):
    """The epochs of the whole run: `epochs`, then the balanced stage's `balanced_epochs`."""
    return config.epochs + config.balanced_epochs


def with_precision_chosen(config):
    """`config` with precision="auto" replaced by the policy chosen (`multi_label.training.mixed_precision`).

    The run's config.json then holds the policy itself, and a resumed run (same training settings but
    the precision) keeps the one it trained with, even on another machine.
    """
    saved = saved_settings(config.run_name)
    same_run = saved is not None and changed_settings(saved, dataclasses.asdict(config)) in ([], ["precision"])
    precision, line = resolve_precision(config.precision, saved.get("precision") if same_run else None)
    if line:
        print(line)
    return dataclasses.replace(config, precision=precision)


def training_dataset(config, table, global_batch, first_epoch, steps_per_epoch):
    """Returns (dataset, DecodeReport) of the training batches, ready for the strategy and the head.

    Every worker reads the same pipeline and keeps its slice of each global batch; a groups head
    has one output, and one loss, per label column.
    """
    dataset, report = input_dataset(config, table, training=True, batch_size=global_batch, first_epoch=first_epoch,
                                    steps_per_epoch=steps_per_epoch)
    dataset = distribute_options(dataset)
    if config.groups:
        dataset = group_targets(dataset, table.class_names)
    return dataset, report


def build_training_optimizer(config, model, steps_per_epoch, batch_size, backup_dir):
    """Returns (optimizer, callbacks) with the learning-rate schedule, weight decay, fine-tuning and the balanced stage.

    `batch_size` is the global batch, which `scale_lr_with_batch` scales lr by. The balanced stage
    (`balanced_epochs`) freezes the backbone from epoch `epochs` on and resets the head once, at its
    start, by the backup in `backup_dir` (`multi_label.training.balanced_stage`).
    """
    apply_weight_decay(model, conv=config.l2_kernels, bn_gamma=config.l2_bn_gamma)  # prints its counts
    optimizer = build_optimizer(optimizer_settings(config), steps_per_epoch, batch_size)
    callbacks = schedule_callbacks(schedule_settings(config), optimizer, monitor=validation_metric(config.groups))
    stage = config.balanced_epochs > 0
    if stage:  # taken before fit restores a backup: the head's initial weights
        callbacks.append(BalancedStageStart(head_layers(model, config.backbone), config.epochs, config.balanced_epochs,
                                            backup_dir, reset_head=config.balanced_reset_head,
                                            learning_rate=optimizer.lr_schedule.stage.learning_rate))
    return optimizer, callbacks + fine_tuning_callbacks(model, optimizer, backbone=config.backbone,
                                                        freeze_epochs=config.freeze_epochs,
                                                        backbone_lr_multiplier=config.backbone_lr_multiplier,
                                                        frozen_from=config.epochs if stage else None)
