"""Learning-rate schedules: linear warmup, then a constant or decaying rate.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` of the
optimizer's iteration count, so restoring the optimizer's variables restores
the exact learning rate. The step is the number of batches `fit` has run:
with gradient accumulation, Keras still passes the batch count (not the
update count) to the schedule, so `steps_per_epoch` is always batches per
epoch.

The plateau schedule is the exception to "a function of the step alone": its
multiplier is changed by `ReduceMultiplierOnPlateau` when the monitored
validation metric stalls. The multiplier lives in a variable that is saved
with the optimizer (see `WarmupPlateau`).
"""

import math
import warnings

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="multi_label")
class WarmupConstant(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `learning_rate`, then constant.

    Step `s` (0-based) gets `learning_rate * (s + 1) / warmup_steps` while
    `s < warmup_steps`: the first update already moves the weights and update
    `warmup_steps - 1` uses the full rate (Goyal et al., 2017,
    https://arxiv.org/abs/1706.02677). Subclasses replace `decay(step)`, the
    rate after warmup, which receives the absolute step.

    Args:
        learning_rate: float. Peak learning rate, reached at the end of warmup.
        warmup_steps: int. Length of the warmup in steps; 0 disables it.
        name: str or None. Name of the schedule.
    """

    def __init__(self, learning_rate, warmup_steps=0, name=None):
        if learning_rate <= 0.0:
            raise ValueError(
                "learning_rate must be > 0. "
                f"Received: learning_rate={learning_rate!r}"
            )
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(
                "warmup_steps must be an int >= 0. "
                f"Received: warmup_steps={warmup_steps!r}"
            )
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.name = name

    def decay(self, step):
        """Returns the learning rate after warmup.

        Args:
            step: float32 tensor. Absolute step.
        """
        return ops.convert_to_tensor(self.learning_rate, "float32")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        learning_rate = self.decay(step)
        if self.warmup_steps == 0:
            return learning_rate
        warmup = self.learning_rate * (step + 1.0) / self.warmup_steps
        return ops.where(step < self.warmup_steps, warmup, learning_rate)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="multi_label")
class WarmupCosine(WarmupConstant):
    """Linear warmup, then cosine decay to `min_learning_rate` at `total_steps`.

    SGDR without restarts (Loshchilov & Hutter, 2017,
    https://arxiv.org/abs/1608.03983): after warmup,
    `lr = min_lr + (peak - min_lr) * (1 + cos(pi * p)) / 2` with
    `p = (step - warmup_steps) / (total_steps - warmup_steps)`, held at
    `min_lr` past `total_steps`.

    Args:
        learning_rate: float. Peak learning rate.
        total_steps: int. Step at which the rate reaches `min_learning_rate`.
        min_learning_rate: float. Final learning rate.
        warmup_steps: int. Length of the warmup in steps.
        name: str or None. Name of the schedule.
    """

    def __init__(
        self,
        learning_rate,
        total_steps,
        min_learning_rate=0.0,
        warmup_steps=0,
        name=None,
    ):
        super().__init__(learning_rate, warmup_steps, name)
        if total_steps <= warmup_steps:
            raise ValueError(
                "total_steps must exceed warmup_steps for a cosine decay. "
                f"Received: total_steps={total_steps!r}, "
                f"warmup_steps={warmup_steps!r}"
            )
        if not 0.0 <= min_learning_rate <= learning_rate:
            raise ValueError(
                "min_learning_rate must be in [0, learning_rate]. Received: "
                f"min_learning_rate={min_learning_rate!r}, "
                f"learning_rate={learning_rate!r}"
            )
        self.total_steps = int(total_steps)
        self.min_learning_rate = float(min_learning_rate)

    def decay(self, step):
        progress = (step - self.warmup_steps) / (
            self.total_steps - self.warmup_steps
        )
        progress = ops.clip(progress, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        span = self.learning_rate - self.min_learning_rate
        return self.min_learning_rate + span * cosine

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "total_steps": self.total_steps,
                "min_learning_rate": self.min_learning_rate,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="multi_label")
class WarmupStep(WarmupConstant):
    """Linear warmup, then a piecewise-constant table of multipliers.

    From step `boundaries[i]` on, the rate is `learning_rate * multipliers[i]`;
    before the first boundary it is `learning_rate`. Multipliers are relative
    to the peak rate, not cumulative: `[0.1, 0.01]` means 1/10 then 1/100.

    Args:
        learning_rate: float. Peak learning rate.
        boundaries: list of int. Strictly increasing absolute steps.
        multipliers: list of float. One positive factor per boundary.
        warmup_steps: int. Length of the warmup in steps.
        name: str or None. Name of the schedule.
    """

    def __init__(
        self, learning_rate, boundaries, multipliers, warmup_steps=0, name=None
    ):
        super().__init__(learning_rate, warmup_steps, name)
        boundaries = [int(b) for b in boundaries]
        multipliers = [float(m) for m in multipliers]
        if len(boundaries) != len(multipliers):
            raise ValueError(
                "boundaries and multipliers must have the same length. "
                f"Received: boundaries={boundaries}, multipliers={multipliers}"
            )
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(
                "boundaries must be strictly increasing. "
                f"Received: boundaries={boundaries}"
            )
        if any(m <= 0.0 for m in multipliers):
            raise ValueError(
                f"multipliers must be > 0. Received: multipliers={multipliers}"
            )
        self.boundaries = boundaries
        self.multipliers = multipliers

    def decay(self, step):
        multiplier = ops.convert_to_tensor(1.0, "float32")
        for boundary, value in zip(self.boundaries, self.multipliers):
            multiplier = ops.where(step >= boundary, value, multiplier)
        return self.learning_rate * multiplier

    def get_config(self):
        config = super().get_config()
        config.update(
            {"boundaries": self.boundaries, "multipliers": self.multipliers}
        )
        return config


@keras.saving.register_keras_serializable(package="multi_label")
class WarmupExponential(WarmupConstant):
    """Linear warmup, then exponential decay by `decay_rate` per `decay_steps`.

    After warmup the rate is
    `learning_rate * decay_rate ** ((step - warmup_steps) / decay_steps)`:
    smooth per step, and exactly one more factor `decay_rate` at every
    `decay_steps` after warmup.

    Args:
        learning_rate: float. Peak learning rate.
        decay_rate: float. Factor per `decay_steps`, in (0, 1].
        decay_steps: int. Steps per factor, usually the steps of one epoch.
        warmup_steps: int. Length of the warmup in steps.
        name: str or None. Name of the schedule.
    """

    def __init__(
        self, learning_rate, decay_rate, decay_steps, warmup_steps=0, name=None
    ):
        super().__init__(learning_rate, warmup_steps, name)
        if not 0.0 < decay_rate <= 1.0:
            raise ValueError(
                "decay_rate must be in (0, 1]. "
                f"Received: decay_rate={decay_rate!r}"
            )
        if decay_steps < 1:
            raise ValueError(
                f"decay_steps must be >= 1. Received: decay_steps={decay_steps!r}"
            )
        self.decay_rate = float(decay_rate)
        self.decay_steps = int(decay_steps)

    def decay(self, step):
        exponent = ops.maximum(step - self.warmup_steps, 0.0) / self.decay_steps
        return self.learning_rate * ops.power(self.decay_rate, exponent)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"decay_rate": self.decay_rate, "decay_steps": self.decay_steps}
        )
        return config


class PlateauState(keras.layers.Layer):
    """Holds the plateau multiplier as a non-trainable variable.

    A layer because Keras saving stores the variables of every layer it finds
    among an object's attributes: `build_optimizer` sets it as an attribute of
    the optimizer, so `.weights.h5` and `.keras` files (and
    `BackupAndRestore`) carry the multiplier without adding a variable to
    `optimizer.variables`. Adding one there would break loading a `.keras`
    file, whose optimizer is rebuilt from its config without that variable.

    Args:
        multiplier: float. Initial value of the multiplier.
    """

    def __init__(self, multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(multiplier),
            trainable=False,
            name="multiplier",
        )
        self.built = True

    def load_own_variables(self, store):
        # A file written by an optimizer restored with `load_model` has no
        # entry (its multiplier travels in the schedule config): keep ours.
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)


@keras.saving.register_keras_serializable(package="multi_label")
class WarmupPlateau(WarmupConstant):
    """Linear warmup, then constant, times a multiplier reduced on plateaus.

    `ReduceMultiplierOnPlateau` multiplies `state.multiplier` by a factor when
    the validation metric stops improving. The current multiplier is part of
    `get_config`, so a `.keras` file restores it from the config, and of
    `state`, which `build_optimizer` exposes to weight checkpoints.

    Args:
        learning_rate: float. Peak learning rate.
        warmup_steps: int. Length of the warmup in steps.
        multiplier: float. Initial multiplier, 1.0 for a new run.
        name: str or None. Name of the schedule.
    """

    def __init__(self, learning_rate, warmup_steps=0, multiplier=1.0, name=None):
        super().__init__(learning_rate, warmup_steps, name)
        self.state = PlateauState(multiplier, name="lr_plateau_state")

    @property
    def multiplier(self):
        """float. Current multiplier of the learning rate."""
        return float(ops.convert_to_numpy(self.state.multiplier))

    def __call__(self, step):
        return ops.multiply(super().__call__(step), self.state.multiplier)

    def get_config(self):
        config = super().get_config()
        config["multiplier"] = self.multiplier
        return config


SCHEDULES = {
    "constant": WarmupConstant,
    "cosine": WarmupCosine,
    "step": WarmupStep,
    "exponential": WarmupExponential,
    "plateau": WarmupPlateau,
}


def warmup_steps(config, steps_per_epoch: int) -> int:
    """Returns the warmup length in steps.

    Args:
        config: run config. Reads `warmup_steps` (int, > 0 wins) and
            `warmup_epochs` (float).
        steps_per_epoch: int. Batches per epoch.
    """
    if config.warmup_steps and config.warmup_steps > 0:
        return int(config.warmup_steps)
    if config.warmup_epochs < 0:
        raise ValueError(
            "warmup_epochs must be >= 0. "
            f"Received: warmup_epochs={config.warmup_epochs!r}"
        )
    return int(round(config.warmup_epochs * steps_per_epoch))


def _step_table(lr_steps, steps_per_epoch):
    """Converts `{epoch: multiplier}` to sorted step boundaries and factors."""
    if not isinstance(lr_steps, dict) or not lr_steps:
        raise ValueError(
            "lr_steps must be a non-empty dict {epoch: multiplier of lr}, "
            f"e.g. {{30: 0.1, 60: 0.01}}. Received: lr_steps={lr_steps!r}"
        )
    # Keys may come back as strings from a JSON copy of the config.
    table = sorted((float(epoch), value) for epoch, value in lr_steps.items())
    boundaries = [int(round(epoch * steps_per_epoch)) for epoch, _ in table]
    return boundaries, [value for _, value in table]


def build_schedule(config, steps_per_epoch: int, learning_rate=None):
    """Builds the schedule named by `config.lr_schedule`.

    Args:
        config: run config. Reads `lr_schedule`, `lr`, `epochs`,
            `warmup_epochs`, `warmup_steps`, `min_lr` (cosine), `lr_steps`
            (step), `lr_decay_rate` (exponential).
        steps_per_epoch: int. Batches per epoch, as counted by `fit`.
        learning_rate: float or None. Peak rate; None means `config.lr`
            (`build_optimizer` passes the batch-scaled rate).

    Returns:
        `keras.optimizers.schedules.LearningRateSchedule`.
    """
    name = config.lr_schedule
    if name not in SCHEDULES:
        raise ValueError(
            f"lr_schedule must be one of {sorted(SCHEDULES)}. "
            f"Received: lr_schedule={name!r}"
        )
    if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
        raise ValueError(
            "steps_per_epoch must be an int >= 1. "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
    peak = float(config.lr if learning_rate is None else learning_rate)
    warmup = warmup_steps(config, steps_per_epoch)
    if name == "cosine":
        return WarmupCosine(
            peak, config.epochs * steps_per_epoch, config.min_lr, warmup
        )
    if name == "step":
        boundaries, multipliers = _step_table(config.lr_steps, steps_per_epoch)
        return WarmupStep(peak, boundaries, multipliers, warmup)
    if name == "exponential":
        return WarmupExponential(
            peak, config.lr_decay_rate, steps_per_epoch, warmup
        )
    return SCHEDULES[name](peak, warmup)


class LearningRateLogger(keras.callbacks.Callback):
    """Writes the learning rate of each epoch into the epoch logs as "lr".

    The rate is read when the epoch begins (after any plateau reduction at
    the end of the previous one), so row `e` of a step table shows the rate
    of epoch `e`. Keras hands the same `logs` dict to every callback in
    order, so this callback must come before `TensorBoard` and `CSVLogger`.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_lr = float(
            ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self._epoch_lr


class ReduceMultiplierOnPlateau(keras.callbacks.Callback):
    """Multiplies a `WarmupPlateau` multiplier by `factor` when a metric stalls.

    Keras's `ReduceLROnPlateau` assigns to the optimizer's learning-rate
    variable, which does not exist when the rate is a schedule; this callback
    changes the schedule's multiplier instead. After `patience` epochs
    without an improvement larger than `min_delta`, the multiplier becomes
    `max(multiplier * factor, min_multiplier)` and the count restarts. The
    best value and the count are not saved, as in `ReduceLROnPlateau`.

    The epoch's logs are judged when the next epoch begins, before its first
    step: by then every callback has written into them, so the monitored
    metric may come from a callback placed after this one in the list.

    Args:
        schedule: `WarmupPlateau`. The schedule to adjust.
        factor: float. Multiplier per reduction, in (0, 1).
        patience: int. Epochs without improvement before a reduction.
        monitor: str. Key of the epoch logs to watch.
        mode: str. "max" if larger is better, "min" otherwise.
        min_multiplier: float. Lower bound of the multiplier.
        min_delta: float. Smallest change that counts as an improvement.
        verbose: int. 1 prints a line at each reduction.
    """

    def __init__(
        self,
        schedule,
        factor,
        patience,
        monitor="val_mAP",
        mode="max",
        min_multiplier=0.0,
        min_delta=0.0,
        verbose=1,
    ):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(
                f"plateau_factor must be in (0, 1). Received: factor={factor!r}"
            )
        if int(patience) != patience or patience < 0:
            raise ValueError(
                "plateau_patience must be an int >= 0. "
                f"Received: patience={patience!r}"
            )
        if mode not in ("max", "min"):
            raise ValueError(
                f"mode must be one of ['max', 'min']. Received: mode={mode!r}"
            )
        self.schedule = schedule
        self.factor = factor
        self.patience = int(patience)
        self.monitor = monitor
        self.mode = mode
        self.min_multiplier = min_multiplier
        self.min_delta = min_delta
        self.verbose = verbose
        self.best = None
        self.wait = 0
        self._last_logs = None

    def _improved(self, current):
        if self.best is None:
            return True
        if self.mode == "max":
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        # The same dict is handed to the callbacks after this one; keep it.
        self._last_logs = (epoch, logs if logs is not None else {})

    def on_epoch_begin(self, epoch, logs=None):
        if self._last_logs is not None:
            self.update(*self._last_logs)
            self._last_logs = None

    def update(self, epoch, logs):
        """Counts epoch `epoch` and reduces the multiplier if it is time.

        Args:
            epoch: int. Index of the finished epoch.
            logs: dict. Its epoch logs, with the monitored metric.
        """
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Plateau schedule monitors {self.monitor!r}, which is not in "
                f"the epoch logs. Available: {sorted(logs)}",
                stacklevel=2,
            )
            return
        if self._improved(current):
            self.best = current
            self.wait = 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        old = self.schedule.multiplier
        new = max(old * self.factor, self.min_multiplier)
        # Compared in float32, the variable's precision, so a multiplier
        # already at its floor is not "reduced" again to the same value.
        if np.float32(new) < np.float32(old):
            self.schedule.state.multiplier.assign(new)
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} has not improved for "
                    f"{self.patience} epochs; learning-rate multiplier "
                    f"{old:.4g} -> {new:.4g}."
                )


def _schedule_of(optimizer):
    """Returns the schedule of an optimizer, unwrapping `LossScaleOptimizer`."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(optimizer, "lr_schedule", None)
    if schedule is None:
        # An optimizer rebuilt by `load_model` never went through
        # `build_optimizer`; Keras keeps the schedule in `_learning_rate`.
        schedule = optimizer._learning_rate
    return schedule


def schedule_callbacks(config, optimizer, monitor="val_mAP", mode="max"):
    """Returns the callbacks the schedule needs during `fit`.

    Put them before `TensorBoard` and `CSVLogger` in the callback list so the
    "lr" key they add to the epoch logs is recorded. Their place relative to
    the callback that writes `monitor` does not matter.

    Args:
        config: run config. Reads `lr_schedule`, and for "plateau"
            `plateau_factor`, `plateau_patience`, `min_lr` and `lr`.
        optimizer: `keras.optimizers.Optimizer`. From `build_optimizer`,
            possibly wrapped in a `LossScaleOptimizer`.
        monitor: str. Epoch-log key the plateau schedule watches.
        mode: str. "max" if larger `monitor` is better, "min" otherwise.

    Returns:
        list of `keras.callbacks.Callback`.
    """
    if config.lr_schedule != "plateau":
        return [LearningRateLogger()]
    schedule = _schedule_of(optimizer)
    if not isinstance(schedule, WarmupPlateau):
        raise ValueError(
            "lr_schedule='plateau' needs an optimizer whose learning rate is "
            f"a WarmupPlateau. Received: {type(schedule).__name__}"
        )
    # An optimizer restored by `load_model` lacks the attribute that puts the
    # multiplier into weight checkpoints (see `build_optimizer`).
    getattr(optimizer, "inner_optimizer", optimizer).lr_plateau_state = (
        schedule.state
    )
    plateau = ReduceMultiplierOnPlateau(
        schedule,
        factor=config.plateau_factor,
        patience=config.plateau_patience,
        monitor=monitor,
        mode=mode,
        # min_lr is absolute; the multiplier scales the (maybe batch-scaled)
        # peak rate.
        min_multiplier=config.min_lr / schedule.learning_rate,
    )
    # The plateau callback first, so the logger reads the reduced rate.
    return [plateau, LearningRateLogger()]
