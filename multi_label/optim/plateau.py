"""The plateau schedule's state and the callback that cuts it when a validation metric stalls.

`WarmupPlateau` (in `multi_label.optim.schedules`) multiplies its rate by the variable of a
`PlateauState`; `ReduceMultiplierOnPlateau` lowers that variable during `fit`.
"""

import warnings

import keras
import numpy as np


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
