"""Learning-rate schedules: linear warmup, then a constant or decaying rate.

The decays after warmup are Keras's own (`CosineDecay`, `PiecewiseConstantDecay`,
`ExponentialDecay`); what is written here is the warmup in front of them, which Keras has only for
the cosine, and there in another form: Keras's warmup gives step 0 its `initial_learning_rate`,
this one gives step s `peak * (s + 1) / warmup_steps` (Goyal et al.), so the first update already
moves the weights and the last warmup step runs at the peak rate, as runs saved before expect.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` of the
optimizer's iteration count, so restoring the optimizer's variables restores
the exact learning rate. The step is the number of batches `fit` has run:
with gradient accumulation, Keras still passes the batch count (not the
update count) to the schedule, so `steps_per_epoch` is always batches per
epoch.

With a balanced stage (`balanced_epochs`) the chosen schedule covers the first `epochs` epochs
and `BalancedStage` restarts at the stage's first step with a cosine of its own.

The plateau schedule is the exception to "a function of the step alone": its
multiplier is changed by `ReduceMultiplierOnPlateau` (`multi_label.optim.plateau`)
when the monitored validation metric stalls. The multiplier lives in a variable
that is saved with the optimizer (see `WarmupPlateau`).
"""

import dataclasses
from typing import Optional

import keras
from keras import ops

from multi_label.optim.plateau import PlateauState
from multi_label.optim.stage_schedule import BalancedStage
from utils.defaults import DEFAULTS


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
        # min + (peak - min) * cosine is Keras's peak * ((1 - alpha) * cosine + alpha), alpha = min / peak
        self._after_warmup = keras.optimizers.schedules.CosineDecay(
            self.learning_rate, self.total_steps - self.warmup_steps, alpha=self.min_learning_rate / self.learning_rate)

    def decay(self, step):
        return self._after_warmup(ops.maximum(step - self.warmup_steps, 0.0))

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
        # Keras moves to the next value after a boundary (step > b), this table from it (step >= b)
        self._after_warmup = keras.optimizers.schedules.PiecewiseConstantDecay(
            [b - 1 for b in boundaries], [self.learning_rate] + [self.learning_rate * m for m in multipliers])

    def decay(self, step):
        return self._after_warmup(step)

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
        self._after_warmup = keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, self.decay_steps, self.decay_rate)

    def decay(self, step):
        return self._after_warmup(ops.maximum(step - self.warmup_steps, 0.0))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"decay_rate": self.decay_rate, "decay_steps": self.decay_steps}
        )
        return config


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


@dataclasses.dataclass(frozen=True)
class ScheduleSettings:
    """The settings the schedules read; names and defaults are those of configs.py."""

    lr_schedule: str = DEFAULTS.lr_schedule
    lr: float = DEFAULTS.lr
    epochs: int = DEFAULTS.epochs
    warmup_epochs: float = DEFAULTS.warmup_epochs
    warmup_steps: int = DEFAULTS.warmup_steps
    min_lr: float = DEFAULTS.min_lr
    lr_steps: Optional[dict] = DEFAULTS.lr_steps
    lr_decay_rate: float = DEFAULTS.lr_decay_rate
    plateau_factor: float = DEFAULTS.plateau_factor
    plateau_patience: int = DEFAULTS.plateau_patience
    balanced_epochs: int = DEFAULTS.balanced_epochs
    balanced_lr: Optional[float] = DEFAULTS.balanced_lr


def _constant(settings, peak, warmup, steps_per_epoch):
    return WarmupConstant(peak, warmup)


def _cosine(settings, peak, warmup, steps_per_epoch):
    return WarmupCosine(peak, settings.epochs * steps_per_epoch, settings.min_lr, warmup)


def _step(settings, peak, warmup, steps_per_epoch):
    # Keys may come back as strings from a JSON copy of the config.
    table = sorted((float(epoch), value) for epoch, value in settings.lr_steps.items())
    boundaries = [int(round(epoch * steps_per_epoch)) for epoch, _ in table]
    return WarmupStep(peak, boundaries, [value for _, value in table], warmup)


def _exponential(settings, peak, warmup, steps_per_epoch):
    return WarmupExponential(peak, settings.lr_decay_rate, steps_per_epoch, warmup)


def _plateau(settings, peak, warmup, steps_per_epoch):
    return WarmupPlateau(peak, warmup)


# Config name -> function(settings, peak rate, warmup steps, steps per epoch) -> schedule.
SCHEDULES = {
    "constant": _constant,
    "cosine": _cosine,
    "step": _step,
    "exponential": _exponential,
    "plateau": _plateau,
}


def warmup_steps(settings, steps_per_epoch: int) -> int:
    """Returns the warmup length in steps.

    Args:
        settings: ScheduleSettings. Reads `warmup_steps` (int, > 0 wins) and
            `warmup_epochs` (float).
        steps_per_epoch: int. Batches per epoch.
    """
    if settings.warmup_steps > 0:
        return int(settings.warmup_steps)
    return int(round(settings.warmup_epochs * steps_per_epoch))


def build_schedule(settings, steps_per_epoch: int, learning_rate=None):
    """Builds the schedule named by `lr_schedule`.

    With `balanced_epochs` > 0 it is a `BalancedStage`: this schedule for the first `epochs`
    epochs, then a cosine from `balanced_lr` (None: `lr`; batch-scaled as `lr` is) to `min_lr`
    over the stage, without warmup.

    Args:
        settings: ScheduleSettings. Reads `lr_schedule`, `lr`, `epochs`,
            `warmup_epochs`, `warmup_steps`, `min_lr` (cosine), `lr_steps`
            (step), `lr_decay_rate` (exponential), `balanced_epochs`, `balanced_lr`.
        steps_per_epoch: int. Batches per epoch, as counted by `fit`.
        learning_rate: float or None. Peak rate; None means `lr`
            (`build_optimizer` passes the batch-scaled rate).

    Returns:
        `keras.optimizers.schedules.LearningRateSchedule`.
    """
    if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
        raise ValueError(
            "steps_per_epoch must be an int >= 1. "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
    peak = float(settings.lr if learning_rate is None else learning_rate)
    build = SCHEDULES[settings.lr_schedule]
    schedule = build(settings, peak, warmup_steps(settings, steps_per_epoch), steps_per_epoch)
    if not settings.balanced_epochs:
        return schedule
    stage_peak = peak if settings.balanced_lr is None else settings.balanced_lr * peak / settings.lr
    stage = WarmupCosine(stage_peak, settings.balanced_epochs * steps_per_epoch, min(settings.min_lr, stage_peak))
    return BalancedStage(schedule, settings.epochs * steps_per_epoch, stage)
