"""Optimizers: Rectified Adam and the builder that turns the optimisation settings into one.

`OPTIMIZERS` maps the `optimizer` setting to a `keras.optimizers.Optimizer` class.
`build_optimizer` wires in the learning-rate schedule of `multi_label.optim.schedules`,
decoupled weight decay, gradient clipping, weight EMA and gradient accumulation,
all of which are features of the Keras base optimizer.
"""


import dataclasses
from typing import Optional

import keras
from keras import ops

from multi_label.optim.schedules import ScheduleSettings, WarmupPlateau, build_schedule
from utils.defaults import DEFAULTS


@keras.saving.register_keras_serializable(package="multi_label")
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al., ICLR 2020), as in `torch.optim.RAdam`.

    "On the Variance of the Adaptive Learning Rate and Beyond",
    https://arxiv.org/abs/1908.03265. Adam's adaptive step size has an
    unbounded variance in the first steps, when the second moment has seen few
    gradients; RAdam multiplies it by a rectification term `r_t` and, while
    the variance is not yet tractable, takes a plain momentum step instead.
    With `t` the update count (1-based):

        m_t = beta_1 m_{t-1} + (1 - beta_1) g_t
        v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2
        m_hat = m_t / (1 - beta_1^t)
        rho_inf = 2 / (1 - beta_2) - 1
        rho_t = rho_inf - 2 t beta_2^t / (1 - beta_2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf
                       / ((rho_inf - 4)(rho_inf - 2) rho_t))
            w -= lr r_t m_hat sqrt(1 - beta_2^t) / (sqrt(v_t) + epsilon)
        else:
            w -= lr m_hat

    The threshold 5 and the placement of `epsilon` (added to `sqrt(v_t)`
    before bias correction) follow PyTorch; the paper's Algorithm 2 uses
    `rho_t > 4` and no epsilon. The step-dependent scalars are computed in
    float64 because `1 - beta_2^t` cancels catastrophically in float32 (an
    error of ~0.02 in `rho_t` at t=5), so the backend must support float64
    (TensorFlow on CPU/GPU does).

    `weight_decay` is decoupled (Loshchilov & Hutter, 2019): every variable
    is multiplied by `1 - lr * weight_decay` before the update, which is
    `torch.optim.RAdam(..., decoupled_weight_decay=True)`. The factor is
    computed in float64 and rounded once to the variable's dtype, as torch
    does (the base class computes `w - w * wd * lr` in the variable's dtype,
    which in float32 drifts from torch by ~2e-6 relative over 100 steps).

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Step size `lr`.
        beta_1: float. Decay of the first-moment average.
        beta_2: float. Decay of the second-moment average; also sets `rho_inf`.
        epsilon: float. Added to `sqrt(v_t)` for numerical stability.
        weight_decay: float or None. Decoupled weight decay; None disables it.
        clipnorm: float or None. Clip each gradient to this L2 norm.
        clipvalue: float or None. Clip each gradient element to this value.
        global_clipnorm: float or None. Clip all gradients to this joint norm.
        use_ema: bool. Keep an exponential moving average of the weights.
        ema_momentum: float. Momentum of the weight average.
        ema_overwrite_frequency: int or None. Steps between copies of the
            average into the weights; None copies at the end of `fit`.
        loss_scale_factor: float or None. Static loss scale.
        gradient_accumulation_steps: int or None. Average this many batches'
            gradients per update.
        name: str. Name of the optimizer and prefix of its variables.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name="radam",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        for arg_name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    f"{arg_name} must be in [0, 1). "
                    f"Received: {arg_name}={value!r}"
                )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        """Creates the first- and second-moment slots.

        Args:
            var_list: list of `keras.Variable`. The variables to optimize.
        """
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def _step_scalars(self):
        """Returns `(1 - beta_1^t, sqrt(1 - beta_2^t), rho_t, r_t)` in float64."""
        step = ops.cast(self.iterations + 1, "float64")
        # convert_to_tensor, not cast: casting a Python float goes through
        # float32 first, and 0.999 in float32 is off by 1e-8, enough to move
        # 1 - beta_2^t by 1e-5.
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype="float64")
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype="float64")
        bias_correction_1 = 1.0 - ops.power(beta_1, step)
        beta_2_power = ops.power(beta_2, step)
        bias_correction_2 = 1.0 - beta_2_power
        rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta_2_power / bias_correction_2
        # Clamped so the unused branch stays finite while rho_t <= 4.
        rect_squared = ops.maximum(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t),
            0.0,
        )
        return (
            bias_correction_1,
            ops.sqrt(bias_correction_2),
            rho_t,
            ops.sqrt(rect_squared),
        )

    def update_step(self, gradient, variable, learning_rate):
        """Applies one RAdam update to `variable`.

        Args:
            gradient: tensor. Gradient of the loss for `variable`.
            variable: `keras.Variable`. The variable to update.
            learning_rate: float tensor. Learning rate of this step.
        """
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]

        # Same arithmetic as torch (lerp for m, mul-add for v) so float32
        # trajectories agree to rounding.
        self.assign_add(
            m, ops.multiply(ops.subtract(gradient, m), 1.0 - self.beta_1)
        )
        self.assign(
            v,
            ops.add(
                ops.multiply(v, self.beta_2),
                ops.multiply(ops.square(gradient), 1.0 - self.beta_2),
            ),
        )

        bias_correction_1, sqrt_bias_correction_2, rho_t, rect = (
            self._step_scalars()
        )
        step_size = ops.cast(
            ops.cast(learning_rate, "float64") / bias_correction_1, dtype
        )
        adaptive = ops.divide(
            ops.cast(rect * sqrt_bias_correction_2, dtype),
            ops.add(ops.sqrt(v), ops.convert_to_tensor(self.epsilon, dtype)),
        )
        # rho_t <= 5: the variance of the adaptive term is intractable, so
        # the update is bias-corrected momentum alone.
        scale = ops.where(rho_t > 5.0, adaptive, ops.ones_like(adaptive))
        self.assign_sub(
            variable, ops.multiply(ops.multiply(m, step_size), scale)
        )

    def _apply_weight_decay(self, variables):
        """Multiplies each decayed variable by `1 - lr * weight_decay`.

        torch's rounding: the factor in float64, then one multiply in the
        variable's dtype. `lr` is Keras's float32 learning rate widened to
        float64; `weight_decay` is the exact Python float. Without a
        distribution strategy (this project trains on one device), a plain
        assign is what the TensorFlow base class does too.

        Args:
            variables: list of `keras.Variable`. The trainable variables.
        """
        if self.weight_decay is None:
            return
        learning_rate = ops.cast(self.learning_rate, "float64")
        weight_decay = ops.convert_to_tensor(self.weight_decay, dtype="float64")
        factor = 1.0 - learning_rate * weight_decay
        for variable in variables:
            if self._use_weight_decay(variable):
                variable.assign(
                    ops.multiply(variable, ops.cast(factor, variable.dtype))
                )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
            }
        )
        return config


OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "radam": RAdam,
    "lion": keras.optimizers.Lion,
}


@dataclasses.dataclass(frozen=True)
class OptimizerSettings(ScheduleSettings):
    """The settings `build_optimizer` reads, those of its schedule included; names and defaults are configs.py's."""

    optimizer: str = DEFAULTS.optimizer
    momentum: float = DEFAULTS.momentum
    nesterov: bool = DEFAULTS.nesterov
    beta_1: float = DEFAULTS.beta_1
    beta_2: float = DEFAULTS.beta_2
    epsilon: float = DEFAULTS.epsilon
    weight_decay: float = DEFAULTS.weight_decay
    clipnorm: Optional[float] = DEFAULTS.clipnorm
    gradient_accumulation_steps: int = DEFAULTS.gradient_accumulation_steps
    ema_decay: float = DEFAULTS.ema_decay
    scale_lr_with_batch: bool = DEFAULTS.scale_lr_with_batch
    base_batch_size: int = DEFAULTS.base_batch_size


def scaled_learning_rate(settings, batch_size: int) -> float:
    """Returns `lr`, scaled with the effective batch size if asked.

    The linear scaling rule (Goyal et al., 2017, "Accurate, Large Minibatch
    SGD", https://arxiv.org/abs/1706.02677) keeps the update per example
    constant: `lr * batch_size * gradient_accumulation_steps / base_batch_size`.

    Args:
        settings: OptimizerSettings. Reads `lr`, `scale_lr_with_batch`,
            `base_batch_size` and `gradient_accumulation_steps`.
        batch_size: int. Examples per batch (per step of `fit`).

    Returns:
        float. The peak learning rate.
    """
    if not settings.scale_lr_with_batch:
        return float(settings.lr)
    effective_batch = batch_size * settings.gradient_accumulation_steps
    return float(settings.lr) * effective_batch / settings.base_batch_size


def _hyperparameters(settings) -> dict:
    """Returns the algorithm-specific constructor arguments."""
    if settings.optimizer == "sgd":
        return {"momentum": settings.momentum, "nesterov": settings.nesterov}
    if settings.optimizer == "lion":
        # Lion has no epsilon: its update is the sign of the interpolation.
        return {"beta_1": settings.beta_1, "beta_2": settings.beta_2}
    return {
        "beta_1": settings.beta_1,
        "beta_2": settings.beta_2,
        "epsilon": settings.epsilon,
    }


def _base_arguments(settings) -> dict:
    """Returns the Keras base optimizer's arguments: weight decay, clipping, EMA, accumulation."""
    weight_decay = float(settings.weight_decay) or None
    if weight_decay is None and settings.optimizer == "adamw":
        # AdamW refuses None; 0.0 is a no-op multiply.
        weight_decay = 0.0
    use_ema = settings.ema_decay > 0.0
    accumulation = settings.gradient_accumulation_steps
    return {
        "weight_decay": weight_decay,
        "clipnorm": settings.clipnorm,
        "use_ema": use_ema,
        "ema_momentum": settings.ema_decay if use_ema else 0.99,
        "gradient_accumulation_steps": accumulation if accumulation > 1 else None,
    }


def build_optimizer(settings, steps_per_epoch: int, batch_size: int):
    """Builds the optimizer named by `optimizer`, with its schedule.

    Decoupled weight decay (`weight_decay`) is the base optimizer's:
    every trainable variable is multiplied by `1 - lr * weight_decay` before
    each update, for all algorithms (so "adam" with weight decay is AdamW).
    Per-kind L2 penalties are `multi_label.optim.weight_decay.apply_weight_decay`.

    The schedule is also kept as `optimizer.lr_schedule`, where
    `schedule_callbacks` finds it; a plateau schedule's state is kept as
    `optimizer.lr_plateau_state`, where Keras saving finds it.

    Args:
        settings: OptimizerSettings. The optimizer's settings and its schedule's.
        steps_per_epoch: int. Batches per epoch, as counted by `fit`.
        batch_size: int. Examples per batch.

    Returns:
        `keras.optimizers.Optimizer`. Not yet built.
    """
    schedule = build_schedule(settings, steps_per_epoch, learning_rate=scaled_learning_rate(settings, batch_size))
    optimizer = OPTIMIZERS[settings.optimizer](
        learning_rate=schedule, **_base_arguments(settings), **_hyperparameters(settings)
    )
    optimizer.lr_schedule = schedule
    if isinstance(schedule, WarmupPlateau):
        # Keras saving stores layers found among the optimizer's attributes
        # but skips the schedule (keras_internals.learning_rate_schedule);
        # exposing the state here puts the plateau multiplier into weight checkpoints.
        optimizer.lr_plateau_state = schedule.state
    return optimizer
