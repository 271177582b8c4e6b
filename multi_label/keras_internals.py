"""Every use of a private Keras API in this project, each in one small function (written for keras==3.15.1).

Keras lacks a public way to do a few things that training here needs: build a compiled model
before a multi-worker `fit`, retrace the training step after a layer's `trainable` changed, give
some variables their own learning rate, customise how `BackupAndRestore` writes, tell
`SwapEMAWeights` where the averaged weights are after a restart, walk every nested layer (for
weight decay), and find a rebuilt optimizer's schedule. Each function says what public
API is missing and which private name it relies on. tests/test_keras_internals.py checks every
one against the installed Keras (the names still exist with the signatures used here, and each
workaround still does its job) and that `KERAS_VERSION` is the installed version, so that a Keras
upgrade stops there until this module has been read again.
"""

import tensorflow as tf

KERAS_VERSION = "3.15.1"  # the version these workarounds were written for and checked against (requirements.txt)


def build_for_multi_worker(model, batch_spec):
    """Builds a compiled model's loss and optimizer from a batch spec, in place of `fit`'s own build.

    Under MultiWorkerMirroredStrategy, Keras 3.15's `fit` builds the compiled loss and the
    optimizer from a first distributed batch that it averages with `strategy.reduce`, which fails
    (it cannot reduce a tuple of PerReplica values); no public API builds them from a spec. The
    private `Model._symbolic_build(data_batch=...)` builds them here, and fit's build step, the
    private `Model._maybe_symbolic_build`, becomes a no-op. fit also averages the step's logs
    across workers over axis 0, which fails on scalar logs: `train_step` returns them as [1]
    vectors, which average to the global values. Call it inside the strategy's scope, after
    `model.compile`.

    Args:
        model: keras.Model. Compiled.
        batch_spec: tuple of tf.TensorSpec. The training dataset's `element_spec`.
    """
    model._symbolic_build(data_batch=batch_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step = model.train_step
    model.train_step = lambda data: {key: tf.reshape(value, [1]) for key, value in train_step(data).items()}


def retrace_train_step(model):
    """Makes the next training step of a running `fit` trace anew, with the layers' current `trainable`.

    Keras reads `trainable` (which weights the step updates, BatchNorm's mode) only when it traces
    the training step; the public way to retrace is a new `compile`, which also replaces the
    optimizer, its state and the schedule. `make_train_function` is public, but what is relied on
    here is not documented: that `force=True` drops the traced function, and that `fit`, which
    reads `model.train_function` anew at every step, uses the new one from its next step on.

    Args:
        model: keras.Model. Compiled.
    """
    model.make_train_function(force=True)


def scale_learning_rate(optimizer, variables, multiplier):
    """Makes `optimizer` update `variables` with its learning rate times `multiplier`.

    Keras 3 has no per-variable learning rate. Every optimizer applies its rule one variable at a
    time in `update_step(gradient, variable, learning_rate)`, which it calls on itself; that
    method is wrapped here, and the variables are told apart by the private `_var_key`, the key
    the optimizer itself gives a variable (one key per mirrored variable under a strategy). The
    choice is made while the step is traced: no cost per step.

    Args:
        optimizer: keras.optimizers.Optimizer. Not a LossScaleOptimizer (pass its inner optimizer).
        variables: list[keras.Variable]. The variables to scale.
        multiplier: float. Factor on their learning rate (0 stops them).
    """
    keys = {optimizer._var_key(variable) for variable in variables}
    plain_update_step = optimizer.update_step
    multiplier = float(multiplier)

    def update_step(gradient, variable, learning_rate):
        if optimizer._var_key(variable) in keys:
            learning_rate = learning_rate * multiplier
        return plain_update_step(gradient, variable, learning_rate)

    optimizer.update_step = update_step


def route_backup_saves(callback, save):
    """Makes a `keras.callbacks.BackupAndRestore` call `save()` wherever it would write its backup.

    BackupAndRestore decides when to save (each epoch end, or every `save_freq` batches counting
    the batches of a `steps_per_execution` group) but offers no public hook for how: its
    `on_epoch_end` and `on_train_batch_end` call the private method `_save_model()`, replaced
    here on the instance.

    Args:
        callback: keras.callbacks.BackupAndRestore.
        save: callable. Takes no argument; writes the backup.
    """
    callback._save_model = save


def backup_position(callback):
    """Returns (finished epochs, last batch seen) as a `BackupAndRestore` counts them: what a save now records.

    BackupAndRestore keeps both in private attributes (`_current_epoch`, set at each epoch end,
    and `_last_batch_seen`, set by its batch counting) and has no public accessor.

    Args:
        callback: keras.callbacks.BackupAndRestore.
    """
    return callback._current_epoch, callback._last_batch_seen


def set_backup_position(callback, epoch, batch=0):
    """Sets where a `BackupAndRestore` counts from after a restore: finished epochs and the last batch seen.

    Both are private (`_current_epoch`, `_last_batch_seen`). The batch matters for a mid-epoch
    restore: Keras adds `batch - last batch seen` to its count towards the next `save_freq` save,
    so a run resumed at batch `n` must start from `n - 1` to save where the uninterrupted run does.

    Args:
        callback: keras.callbacks.BackupAndRestore.
        epoch: int. Finished epochs.
        batch: int. The last batch (0-based) of the current epoch already trained; 0 at an epoch start.
    """
    callback._current_epoch = epoch
    callback._last_batch_seen = batch


def skip_next_step(model, batches):
    """Makes the next training step of `fit` draw `batches` batches from its iterator without training on them.

    A run resumed from a mid-epoch backup must go on with the batch after the last one trained,
    while Keras's epoch loop always starts an epoch at its first step and counts `steps_per_epoch`
    steps. `fit` calls `model.train_function(iterator)` once per step and reads the attribute
    anew each time (see `retrace_train_step`); here it is replaced for one call by a function that
    takes the batches (the data pipeline's order stays that of the uninterrupted run) and returns
    no logs, then puts the real one back. The optimizer's step count and every weight are the
    restored ones, so nothing is trained twice.

    Args:
        model: keras.Model. The model being fitted.
        batches: int. Batches to draw (the step's `steps_per_execution`, or what is left to skip).
    """
    train_function = model.train_function

    def skip(iterator):
        model.train_function = train_function
        for _ in range(batches):
            next(iterator)
        return {}

    model.train_function = skip


def set_initial_epoch(model, epoch):
    """Makes the `fit` being started begin at epoch `epoch` (0-based), as BackupAndRestore does on restore.

    `fit(initial_epoch=...)` is fixed before the callbacks run; a callback that restores a backup
    in `on_train_begin` can move the start only through the private `Model._initial_epoch`, which
    `fit` reads right after `on_train_begin`.

    Args:
        model: keras.Model. The model being fitted.
        epoch: int. Epochs already finished.
    """
    model._initial_epoch = epoch


def ema_weights_in_model(callback):
    """True when a `keras.callbacks.SwapEMAWeights` has put the averaged weights into the model.

    SwapEMAWeights keeps this in the private flag `_ema_weights_in_model` and has no public
    state: a run resumed from a backup written while the averaged weights were in the model must
    tell the new callback so (`set_ema_weights_in_model`), or it would train on from them.

    Args:
        callback: keras.callbacks.SwapEMAWeights.
    """
    return bool(callback._ema_weights_in_model)


def set_ema_weights_in_model(callback, value):
    """Tells a `keras.callbacks.SwapEMAWeights` whether the model holds the averaged weights.

    Args:
        callback: keras.callbacks.SwapEMAWeights.
        value: bool. The state `ema_weights_in_model` returned when the backup was written.
    """
    callback._ema_weights_in_model = bool(value)


def all_layers(model):
    """Every layer of `model`, itself and layers nested in layers included, each once.

    `model.layers` lists only the top level, and a layer nested inside a layer that is not a model
    (a block built as a Layer subclass) appears in no public list. The private
    `Layer._flatten_layers(include_self, recursive)` is the walk Keras itself uses to collect
    `model.losses`, so a regulariser set on each of these layers is seen by the loss.

    Args:
        model: keras.Model or keras.layers.Layer.
    """
    return list(model._flatten_layers(include_self=True, recursive=True))


def learning_rate_schedule(optimizer):
    """The learning-rate schedule (or constant) an optimizer was created with.

    A rebuilt optimizer (from `load_model`) gives only the rate's current value through the public
    `learning_rate`; Keras keeps the schedule object in the private `_learning_rate`.

    Args:
        optimizer: keras.optimizers.Optimizer. Not a LossScaleOptimizer (pass its inner optimizer).
    """
    return optimizer._learning_rate
