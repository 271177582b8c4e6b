"""FusedAdam: Keras's Adam arithmetic on TensorFlow's fused kernel, compared with keras.optimizers.Adam side by side."""

import keras
import numpy as np
import pytest

from multi_label.optim.fused_adam import FusedAdam
from multi_label.optim.optimizers import OPTIMIZERS

X = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
Y = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")


def trained(optimizer, precision="float32"):
    """Weights after 2 epochs of 8 steps of a small model, from seeded weights, with `optimizer`."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3, dtype="float32")])
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        return [w.numpy() for w in model.weights], model
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("options", [
    {}, {"weight_decay": 0.01}, {"gradient_accumulation_steps": 2}, {"use_ema": True, "ema_momentum": 0.9},
    {"clipnorm": 0.1}, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3},
], ids=["plain", "weight_decay", "accumulation", "ema", "clipnorm", "betas"])
def test_fused_adam_gives_keras_adams_weights(options):
    expected, _ = trained(keras.optimizers.Adam(learning_rate=0.01, **options))
    fused, model = trained(FusedAdam(learning_rate=0.01, **options))
    assert any(np.abs(w - e).max() > 0 for w, e in zip(fused, trained(keras.optimizers.SGD(0.01))[0]))
    for weight, reference in zip(fused, expected):
        np.testing.assert_allclose(weight, reference, rtol=1e-5, atol=2e-6)
    assert int(model.optimizer.iterations.numpy()) == (8 if options.get("gradient_accumulation_steps") else 16)


def test_fused_adam_with_a_schedule_and_loss_scaling_in_mixed_float16():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5)
    expected, _ = trained(keras.optimizers.Adam(learning_rate=schedule), precision="mixed_float16")
    fused, model = trained(FusedAdam(learning_rate=schedule), precision="mixed_float16")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    for weight, reference in zip(fused, expected):
        np.testing.assert_allclose(weight, reference, rtol=1e-4, atol=1e-5)


def test_amsgrad_takes_keras_update():
    expected, _ = trained(keras.optimizers.Adam(learning_rate=0.01, amsgrad=True))
    fused, _ = trained(FusedAdam(learning_rate=0.01, amsgrad=True))
    for weight, reference in zip(fused, expected):
        np.testing.assert_array_equal(weight, reference)


def test_the_trainer_uses_it_and_it_saves_and_loads(tmp_path):
    assert OPTIMIZERS["adam"] is FusedAdam
    _, model = trained(FusedAdam(learning_rate=0.01))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.optimizer, FusedAdam)
    for slot, saved in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(slot), np.asarray(saved))
