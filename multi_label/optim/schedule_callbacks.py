"""The callbacks a learning-rate schedule needs during `fit`: the plateau cut and the "lr" log."""

import keras
from keras import ops

from multi_label.keras_internals import learning_rate_schedule
from multi_label.optim.plateau import ReduceMultiplierOnPlateau
from multi_label.optim.schedules import WarmupPlateau
from multi_label.optim.stage_schedule import main_schedule


class LearningRateLogger(keras.callbacks.Callback):
    """Writes the learning rate of each epoch into the epoch logs as "lr".

    The rate is that of the epoch's first step (after any plateau reduction at the end of the
    previous one), so row `e` of a step table shows the rate of epoch `e`. It is the schedule at
    step `epoch * steps per epoch`, which is the optimizer's step count when an epoch begins,
    except in a run resumed from a mid-epoch backup: its count is already past the steps trained
    before the backup, and the row must still read as in the uninterrupted run. Keras hands the
    same `logs` dict to every callback in order, so this callback must come before `TensorBoard`
    and `CSVLogger`.
    """

    def on_epoch_begin(self, epoch, logs=None):
        schedule, steps = _schedule_of(self.model.optimizer), (self.params or {}).get("steps")
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) and steps:
            rate = schedule(epoch * steps)
        else:
            rate = self.model.optimizer.learning_rate
        self._epoch_lr = float(ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self._epoch_lr


def _schedule_of(optimizer):
    """Returns the schedule of an optimizer, unwrapping `LossScaleOptimizer`."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(optimizer, "lr_schedule", None)
    if schedule is None:
        # An optimizer rebuilt by `load_model` never went through `build_optimizer`.
        schedule = learning_rate_schedule(optimizer)
    return schedule


def schedule_callbacks(settings, optimizer, monitor="val_mAP", mode="max"):
    """Returns the callbacks the schedule needs during `fit`.

    Put them before `TensorBoard` and `CSVLogger` in the callback list so the
    "lr" key they add to the epoch logs is recorded. Their place relative to
    the callback that writes `monitor` does not matter.

    Args:
        settings: ScheduleSettings. Reads `lr_schedule`, and for "plateau"
            `plateau_factor`, `plateau_patience` and `min_lr`.
        optimizer: `keras.optimizers.Optimizer`. From `build_optimizer`,
            possibly wrapped in a `LossScaleOptimizer`.
        monitor: str. Epoch-log key the plateau schedule watches.
        mode: str. "max" if larger `monitor` is better, "min" otherwise.

    Returns:
        list of `keras.callbacks.Callback`.
    """
    if settings.lr_schedule != "plateau":
        return [LearningRateLogger()]
    # With a balanced stage the plateau cuts the first stage's rate; the stage has its own cosine.
    schedule = main_schedule(_schedule_of(optimizer))
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
        factor=settings.plateau_factor,
        patience=settings.plateau_patience,
        monitor=monitor,
        mode=mode,
        # min_lr is absolute; the multiplier scales the (maybe batch-scaled)
        # peak rate.
        min_multiplier=settings.min_lr / schedule.learning_rate,
    )
    # The plateau callback first, so the logger reads the reduced rate.
    return [plateau, LearningRateLogger()]
