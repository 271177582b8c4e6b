"""The private-Keras workarounds of multi_label/keras_internals.py still find what they use and still work.

Each test checks the private names a workaround relies on (they exist, with the signature used)
and then that the workaround does its job on a tiny model. A failure here after a Keras upgrade
points at the function to revisit.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from multi_label import keras_internals
from multi_label.keras_internals import (
    backup_position,
    build_for_multi_worker,
    ema_weights_in_model,
    retrace_train_step,
    route_backup_saves,
    scale_learning_rate,
    set_backup_position,
    set_ema_weights_in_model,
    set_initial_epoch,
    skip_next_step,
)


def parameters(function):
    return list(inspect.signature(function).parameters)


def tiny_model(seed=0, optimizer=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.1), loss="mse")
    return model


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def test_the_stated_keras_version_is_the_installed_one():
    # an upgrade stops here: read keras_internals.py again, then update KERAS_VERSION
    assert keras_internals.KERAS_VERSION == keras.__version__


def test_multi_worker_build_uses_symbolic_build_and_skips_fits_own():
    assert parameters(keras.Model._symbolic_build) == ["self", "iterator", "data_batch"]
    assert parameters(keras.Model._maybe_symbolic_build) == ["self", "iterator", "data_batch"]
    assert "self._maybe_symbolic_build(" in inspect.getsource(keras.Model.fit)  # the step that is skipped

    model = tiny_model()
    x, y = data()
    spec = (tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None, 2], tf.float32))
    build_for_multi_worker(model, spec)
    assert model.optimizer.built and model.optimizer.variables  # built from the spec, before any batch
    assert model._maybe_symbolic_build(data_batch=(x, y)) is None
    logs = model.train_step((tf.constant(x), tf.constant(y)))
    assert logs and all(tuple(value.shape) == (1,) for value in logs.values())  # averaged over axis 0 by fit


def test_retrace_makes_a_frozen_layer_stop_updating_within_fit():
    assert "force" in parameters(keras.Model.make_train_function)
    model = tiny_model()
    hidden = model.get_layer("hidden")
    seen = []

    class FreezeAtSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(hidden.get_weights()[0].copy())
            if epoch == 1:
                hidden.trainable = False
                retrace_train_step(self.model)

    x, y = data()
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[FreezeAtSecondEpoch()], verbose=0)
    assert not np.array_equal(seen[0], seen[1])  # epoch 1 trained the layer
    np.testing.assert_array_equal(hidden.get_weights()[0], seen[1])  # epoch 2, after the retrace, did not


def test_skipped_steps_draw_their_batches_without_training_on_them():
    x, y = data(n=12)
    # Two skipped steps then one trained: the same weights as one step on the third batch alone.
    model = tiny_model()

    class SkipTwo(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch < 2:
                skip_next_step(self.model, 1)

    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, callbacks=[SkipTwo()], verbose=0)
    reference = tiny_model()
    reference.fit(x[8:], y[8:], batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == int(reference.optimizer.iterations) == 1
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_learning_rate_multiplier_scales_an_sgd_step_of_its_variables_only():
    optimizer = keras.optimizers.SGD(0.1)
    assert parameters(optimizer._var_key) == ["variable"]
    assert parameters(type(optimizer).update_step) == ["self", "gradient", "variable", "learning_rate"]
    scaled, plain = keras.Variable(np.ones(3, "float32")), keras.Variable(np.ones(3, "float32"))
    scale_learning_rate(optimizer, [scaled], 0.25)
    gradient = np.array([1.0, 2.0, -4.0], "float32")
    optimizer.apply([gradient, gradient], [scaled, plain])
    np.testing.assert_allclose(1.0 - plain.numpy(), 0.1 * gradient, rtol=1e-6)
    np.testing.assert_allclose(1.0 - scaled.numpy(), 0.25 * 0.1 * gradient, rtol=1e-6)


def test_backup_internals_exist_and_route_every_save(tmp_path):
    assert "_save_model" in vars(keras.callbacks.BackupAndRestore)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=2, delete_checkpoint=False)
    assert backup_position(backup) == (0, 0)
    saves = []
    route_backup_saves(backup, lambda: saves.append(backup_position(backup)))
    for batch in range(4):
        backup.on_train_batch_end(batch)
    assert saves == [(0, 1), (0, 3)]  # every save_freq batches, decided by Keras
    backup.on_epoch_end(0)
    assert backup_position(backup) == (1, 0)
    set_backup_position(backup, 5, 2)  # restored after batch 2 of epoch 6: the next save is save_freq batches on
    assert backup_position(backup) == (5, 2)
    for batch in range(3, 6):
        backup.on_train_batch_end(batch)
    assert saves[-1] == (5, 4)
    at_epoch_end = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    route_backup_saves(at_epoch_end, lambda: saves.append("epoch"))
    at_epoch_end.on_epoch_end(0)
    assert saves[-1] == "epoch"
    assert not list(tmp_path.iterdir())  # Keras's own writer never ran


def test_initial_epoch_set_in_on_train_begin_moves_fits_start():
    assert keras.Model()._initial_epoch is None
    source = inspect.getsource(keras.Model.fit)
    assert source.index("on_train_begin()") < source.index("self._initial_epoch")  # read after the callbacks

    class Restore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            set_initial_epoch(self.model, 2)

    model = tiny_model()
    x, y = data()
    history = model.fit(x, y, epochs=3, callbacks=[Restore()], verbose=0)
    assert history.epoch == [2]


def test_ema_flag_is_read_and_written():
    callback = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    assert "_ema_weights_in_model" in vars(callback) and not ema_weights_in_model(callback)
    model = tiny_model(optimizer=keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5))
    x, y = data()
    for _ in range(3):
        model.train_on_batch(x, y)
    trained = [w.copy() for w in model.get_weights()]
    callback.set_model(model)
    callback.set_params({"epochs": 10})
    callback.on_epoch_end(0)
    assert ema_weights_in_model(callback)
    averaged = [w.copy() for w in model.get_weights()]
    assert not np.array_equal(averaged[0], trained[0])  # the averaged weights are in the model
    set_ema_weights_in_model(callback, False)
    callback.on_epoch_begin(1)  # told the model holds the trained weights: no swap
    np.testing.assert_array_equal(model.get_weights()[0], averaged[0])
    set_ema_weights_in_model(callback, True)
    callback.on_epoch_begin(1)  # told the model holds the averaged weights: swapped back
    np.testing.assert_allclose(model.get_weights()[0], trained[0], atol=1e-6)  # Keras swaps by adding and subtracting
    assert not ema_weights_in_model(callback)


def test_all_layers_walks_nested_layers_once():
    assert parameters(keras.layers.Layer._flatten_layers)[:3] == ["self", "include_self", "recursive"]

    class Block(keras.layers.Layer):  # a layer holding a layer: not in any public list of the model
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(2, name="inner")

        def call(self, x):
            return self.inner(x)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Block(name="block")(keras.layers.Dense(3, name="first")(inputs)))
    names = [layer.name for layer in keras_internals.all_layers(model)]
    assert "inner" in names and "block" in names and "first" in names
    assert len(names) == len(set(names))
    assert "inner" not in [layer.name for layer in model.layers]


def test_learning_rate_schedule_is_found_on_a_rebuilt_optimizer(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = tiny_model(optimizer=keras.optimizers.SGD(schedule))
    model.fit(*data(), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    optimizer = keras.saving.load_model(tmp_path / "m.keras").optimizer
    found = keras_internals.learning_rate_schedule(optimizer)
    assert isinstance(found, keras.optimizers.schedules.ExponentialDecay)
    assert found.get_config() == schedule.get_config()
