"""Tests for multi_label.optim.optimizers: RAdam against the paper, and build_optimizer."""

import keras
import numpy as np
import pytest
from optional import optional_import

from configs import Config
from multi_label.optim.optimizers import OPTIMIZERS, OptimizerSettings, RAdam, build_optimizer, scaled_learning_rate
from multi_label.optim.schedules import ScheduleSettings
from multi_label.tasks.settings import optimizer_settings, schedule_settings
from utils.config import ConfigError, load_config

SHAPES = [(3, 4), (5,), (2, 3, 3, 2)]
# Keras stores the learning rate in float32 and casts Python floats through
# float32; powers of two are exact there, so float64 runs can be compared with
# the float64 reference down to rounding.
LEARNING_RATE = 2.0**-10
WEIGHT_DECAY = 2.0**-3


def paper_radam(params, grads, lr, beta_1, beta_2, epsilon, weight_decay):
    """Rectified Adam, Algorithm 2 of Liu et al. (ICLR 2020), in NumPy float64.

    Transcribed from the paper with PyTorch's two conventions: the rectified
    step is taken when rho_t > 5 (the paper says 4), and epsilon is added to
    sqrt(v_t). Decoupled weight decay (Loshchilov & Hutter) shrinks the
    weights before the step. Returns the weights after every step, and rho_t.
    """
    params = [np.array(p, dtype=np.float64) for p in params]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    rho_inf = 2.0 / (1.0 - beta_2) - 1.0
    trajectory, rhos = [], []
    for t, step_grads in enumerate(grads, start=1):
        rho_t = rho_inf - 2.0 * t * beta_2**t / (1.0 - beta_2**t)
        rhos.append(rho_t)
        for i, g in enumerate(step_grads):
            params[i] = params[i] * (1.0 - lr * weight_decay)
            first[i] = beta_1 * first[i] + (1.0 - beta_1) * g
            second[i] = beta_2 * second[i] + (1.0 - beta_2) * g * g
            m_hat = first[i] / (1.0 - beta_1**t)
            if rho_t > 5.0:
                l_t = np.sqrt(1.0 - beta_2**t) / (np.sqrt(second[i]) + epsilon)
                r_t = np.sqrt(
                    (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
                )
                params[i] = params[i] - lr * r_t * m_hat * l_t
            else:
                params[i] = params[i] - lr * m_hat
        trajectory.append([p.copy() for p in params])
    return trajectory, rhos


def random_problem(steps, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(steps)]
    return params, grads


def keras_trajectory(optimizer, params, grads, dtype):
    variables = [keras.Variable(p.astype(dtype), dtype=dtype) for p in params]
    trajectory = []
    for step_grads in grads:
        optimizer.apply([g.astype(dtype) for g in step_grads], variables)
        trajectory.append([keras.ops.convert_to_numpy(v) for v in variables])
    return trajectory


def assert_trajectories_close(actual, expected, rtol):
    for step, (got, want) in enumerate(zip(actual, expected), start=1):
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_allclose(
                a, b, rtol=rtol, atol=0, err_msg=f"step {step}, param {i}"
            )


@pytest.mark.parametrize("weight_decay", [0.0, WEIGHT_DECAY])
def test_radam_matches_paper_float64(weight_decay):
    params, grads = random_problem(steps=100)
    expected, rhos = paper_radam(
        params, grads, LEARNING_RATE, 0.9, 0.999, 1e-8, weight_decay
    )
    # Both regimes are exercised: momentum steps first, rectified after.
    assert all(rho <= 5.0 for rho in rhos[:5])
    assert all(rho > 5.0 for rho in rhos[5:])
    optimizer = RAdam(
        learning_rate=LEARNING_RATE, weight_decay=weight_decay or None
    )
    actual = keras_trajectory(optimizer, params, grads, "float64")
    assert_trajectories_close(actual, expected, rtol=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_radam_matches_paper_float32(weight_decay):
    params, grads = random_problem(steps=100, seed=1)
    params = [p.astype(np.float32) for p in params]
    grads = [[g.astype(np.float32) for g in step] for step in grads]
    expected, _ = paper_radam(params, grads, 1e-3, 0.9, 0.99, 1e-6, weight_decay)
    optimizer = RAdam(
        learning_rate=1e-3,
        beta_2=0.99,
        epsilon=1e-6,
        weight_decay=weight_decay or None,
    )
    actual = keras_trajectory(optimizer, params, grads, "float32")
    # float32 rounding of lr and of each update accumulates over 100 steps.
    assert_trajectories_close(actual, expected, rtol=2e-5)


def test_radam_first_step_is_plain_gradient_step():
    # At t=1, m_hat = g and rho_1 = 1 <= 5, so w1 = w0 - lr * g exactly.
    variable = keras.Variable(np.array([1.0, -2.0, 3.0]), dtype="float64")
    gradient = np.array([0.5, 0.25, -4.0])
    RAdam(learning_rate=LEARNING_RATE).apply([gradient], [variable])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(variable),
        np.array([1.0, -2.0, 3.0]) - LEARNING_RATE * gradient,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01, 0.1])
def test_radam_matches_torch(weight_decay, dtype):
    torch = optional_import("torch", why="not a requirement: the reference RAdam")
    params, grads = random_problem(steps=100, seed=2)
    params = [p.astype(dtype) for p in params]
    grads = [[g.astype(dtype) for g in step] for step in grads]
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    # torch is given the learning rate Keras holds: Keras keeps it in a
    # float32 variable, so 1e-3 is 1e-3 * (1 + 3e-9) on both sides.
    # foreach=False pins torch's single-tensor arithmetic on every device.
    reference = torch.optim.RAdam(
        tensors,
        lr=float(np.float32(1e-3)),
        weight_decay=weight_decay,
        decoupled_weight_decay=True,
        foreach=False,
    )
    expected = []
    for step_grads in grads:
        for tensor, g in zip(tensors, step_grads):
            tensor.grad = torch.tensor(g)
        reference.step()
        expected.append([t.detach().numpy().copy() for t in tensors])
    optimizer = RAdam(learning_rate=1e-3, weight_decay=weight_decay or None)
    actual = keras_trajectory(optimizer, params, grads, dtype)
    # float32: the two differ only in the order of a few roundings per
    # step (measured max 1.6e-7 over 100 steps); float64: ~1e-16.
    assert_trajectories_close(actual, expected, rtol=1e-6)


def test_radam_gradient_accumulation_counts_updates():
    # Two accumulated micro-batches must equal one step on their mean: the
    # bias corrections and rho_t use the update count, not the batch count.
    params, grads = random_problem(steps=8, seed=3)
    accumulated = RAdam(learning_rate=LEARNING_RATE, gradient_accumulation_steps=2)
    actual = keras_trajectory(accumulated, params, grads, "float64")
    mean_grads = [
        [(a + b) / 2.0 for a, b in zip(grads[i], grads[i + 1])]
        for i in range(0, len(grads), 2)
    ]
    plain = RAdam(learning_rate=LEARNING_RATE)
    expected = keras_trajectory(plain, params, mean_grads, "float64")
    assert_trajectories_close(actual[1::2], expected, rtol=1e-12)


def test_radam_clipnorm_clips_first_step():
    variable = keras.Variable(np.zeros(2), dtype="float64")
    RAdam(learning_rate=LEARNING_RATE, clipnorm=1.0).apply(
        [np.array([3.0, 4.0])], [variable]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable),
        -LEARNING_RATE * np.array([0.6, 0.8]),
        rtol=1e-12,
    )


def test_radam_serialization_round_trip():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    optimizer = RAdam(
        learning_rate=schedule,
        beta_1=0.8,
        beta_2=0.95,
        epsilon=1e-7,
        weight_decay=0.05,
        clipnorm=2.0,
    )
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, RAdam)
    config = restored.get_config()
    for key in ("beta_1", "beta_2", "epsilon", "weight_decay", "clipnorm"):
        assert config[key] == optimizer.get_config()[key]
    assert float(restored.learning_rate) == pytest.approx(1e-3)


def tiny_model(dtype=None):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", dtype=dtype)(inputs)
    outputs = keras.layers.Dense(3, dtype=dtype)(hidden)
    return keras.Model(inputs, outputs)


def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (rng.random(size=(32, 3)) > 0.5).astype("float32")
    return x, y


def test_radam_fit_with_loss_scaling_ema_clipping_accumulation():
    keras.utils.set_random_seed(0)
    model = tiny_model(dtype="mixed_float16")
    inner = RAdam(
        learning_rate=1e-2,
        clipnorm=1.0,
        use_ema=True,
        ema_momentum=0.9,
        gradient_accumulation_steps=2,
    )
    optimizer = keras.optimizers.LossScaleOptimizer(inner)
    model.compile(optimizer, keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    # 16 batches, two per update; a step whose scaled gradients overflow is
    # skipped, so at most 8 updates.
    assert 1 <= int(inner.iterations) <= 8
    assert len(inner._model_variables_moving_average) == 4


def test_radam_model_save_and_load(tmp_path):
    model = tiny_model()
    model.compile(RAdam(learning_rate=1e-2, weight_decay=0.01), "mse")
    x, y = tiny_data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, RAdam)
    assert restored.optimizer.weight_decay == 0.01
    for saved, loaded in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(loaded)
        )


def make_config(**overrides):
    # the defaults of the other settings turn weight decay, clipping, EMA, accumulation and scaling off
    settings = dict(optimizer="radam", lr=1e-3, epsilon=1e-8, lr_schedule="constant", warmup_epochs=0.0, epochs=10,
                    lr_steps={30: 0.1}, plateau_patience=5)
    return OptimizerSettings(**{**settings, **overrides})


def test_optimizer_settings_defaults_are_the_config_defaults():
    assert OptimizerSettings() == optimizer_settings(Config())
    assert ScheduleSettings() == schedule_settings(Config())


def test_whole_config_still_builds_an_optimizer():
    # duck typing: a caller that passes the whole Config in the settings slot keeps working
    optimizer = build_optimizer(Config(), steps_per_epoch=10, batch_size=32)
    assert type(optimizer) is OPTIMIZERS[Config().optimizer]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_build_optimizer_each_name(name):
    config = make_config(
        optimizer=name,
        weight_decay=0.05,
        clipnorm=1.0,
        ema_decay=0.999,
        gradient_accumulation_steps=4,
    )
    optimizer = build_optimizer(config, steps_per_epoch=10, batch_size=32)
    assert type(optimizer) is OPTIMIZERS[name]
    assert optimizer.weight_decay == 0.05
    assert optimizer.clipnorm == 1.0
    assert optimizer.use_ema and optimizer.ema_momentum == 0.999
    assert optimizer.gradient_accumulation_steps == 4
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    if name == "sgd":
        assert optimizer.momentum == 0.9 and optimizer.nesterov
    else:
        assert optimizer.beta_1 == 0.9


def test_build_optimizer_defaults_are_off():
    optimizer = build_optimizer(make_config(), steps_per_epoch=10, batch_size=32)
    assert optimizer.weight_decay is None
    assert optimizer.clipnorm is None
    assert not optimizer.use_ema
    assert optimizer.gradient_accumulation_steps is None
    adamw = build_optimizer(
        make_config(optimizer="adamw"), steps_per_epoch=10, batch_size=32
    )
    assert adamw.weight_decay == 0.0


def test_build_optimizer_scales_lr_with_effective_batch():
    config = make_config(
        scale_lr_with_batch=True,
        base_batch_size=256,
        gradient_accumulation_steps=2,
    )
    assert scaled_learning_rate(config, batch_size=64) == pytest.approx(5e-4)
    optimizer = build_optimizer(config, steps_per_epoch=10, batch_size=64)
    assert float(optimizer.learning_rate) == pytest.approx(5e-4)


def test_bad_optimizer_settings_are_rejected_at_config_load():
    # checked once, when the config is loaded; build_optimizer does not check them again
    allowed = "".join(f"(?=.*'{name}')" for name in OPTIMIZERS)
    with pytest.raises(ConfigError, match=f"optimizer='adagrad'{allowed}"):
        load_config(["optimizer=adagrad"])
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        load_config(["gradient_accumulation_steps=0"])
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config(["ema_decay=1.0"])
