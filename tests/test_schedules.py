"""Tests for multi_label.optim.schedules, plateau and schedule_callbacks: values, serialization, resuming."""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from multi_label.optim.optimizers import OptimizerSettings, build_optimizer
from multi_label.optim.plateau import ReduceMultiplierOnPlateau
from multi_label.optim.schedule_callbacks import LearningRateLogger, schedule_callbacks
from multi_label.optim.schedules import (
    SCHEDULES,
    ScheduleSettings,
    WarmupConstant,
    WarmupCosine,
    WarmupPlateau,
    build_schedule,
)
from multi_label.tasks.settings import schedule_settings
from utils.config import ConfigError, load_config

STEPS_PER_EPOCH = 10


def make_config(**overrides):
    # the defaults of the other settings turn weight decay, clipping, EMA, accumulation and scaling off
    settings = dict(optimizer="sgd", lr=0.1, nesterov=False, epsilon=1e-8, lr_schedule="constant", warmup_epochs=0.0,
                    epochs=10, lr_steps={3: 0.1, 6: 0.01}, lr_decay_rate=0.5, plateau_factor=0.5, plateau_patience=2)
    return OptimizerSettings(**{**settings, **overrides})


def values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_warmup_is_linear_then_flat():
    schedule = build_schedule(make_config(warmup_epochs=0.4), STEPS_PER_EPOCH)
    assert isinstance(schedule, WarmupConstant)
    np.testing.assert_allclose(
        values(schedule, range(6)), [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-6
    )


def test_warmup_steps_override_warmup_epochs():
    config = make_config(warmup_epochs=5.0, warmup_steps=2)
    schedule = build_schedule(config, STEPS_PER_EPOCH)
    np.testing.assert_allclose(values(schedule, range(3)), [0.05, 0.1, 0.1], rtol=1e-6)


def test_cosine_endpoints_and_midpoint():
    config = make_config(
        lr_schedule="cosine", warmup_epochs=1.0, epochs=5, min_lr=0.001
    )
    schedule = build_schedule(config, STEPS_PER_EPOCH)
    assert isinstance(schedule, WarmupCosine)
    start, middle, end, after = values(schedule, [10, 30, 50, 80])
    assert start == pytest.approx(0.1, rel=1e-6)
    assert middle == pytest.approx((0.1 + 0.001) / 2, rel=1e-6)
    assert end == pytest.approx(0.001, rel=1e-6)
    assert after == pytest.approx(0.001, rel=1e-6)
    # A quarter of the way: min + (peak - min) * (1 + cos(pi / 4)) / 2.
    quarter = 0.001 + 0.099 * (1 + math.cos(math.pi / 4)) / 2
    assert float(schedule(20)) == pytest.approx(quarter, rel=1e-6)


def test_step_table_boundaries_are_epochs():
    schedule = build_schedule(make_config(lr_schedule="step"), STEPS_PER_EPOCH)
    np.testing.assert_allclose(
        values(schedule, [0, 29, 30, 59, 60, 99]),
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
        rtol=1e-6,
    )


def test_step_table_accepts_string_epochs_from_json():
    config = make_config(lr_schedule="step", lr_steps={"6": 0.01, "3": 0.1})
    schedule = build_schedule(config, STEPS_PER_EPOCH)
    assert schedule.boundaries == [30, 60]
    assert schedule.multipliers == [0.1, 0.01]


def test_exponential_decays_per_epoch_after_warmup():
    config = make_config(lr_schedule="exponential", warmup_epochs=1.0)
    schedule = build_schedule(config, STEPS_PER_EPOCH)
    np.testing.assert_allclose(
        values(schedule, [10, 15, 20, 40]),
        [0.1, 0.1 * 0.5**0.5, 0.05, 0.0125],
        rtol=1e-6,
    )


def test_unknown_schedule_name_is_rejected_at_config_load():
    # the config's Literal holds the names of SCHEDULES; build_schedule does not check them again
    allowed = "".join(f"(?=.*'{name}')" for name in SCHEDULES)
    with pytest.raises(ConfigError, match=f"lr_schedule='linear'{allowed}"):
        load_config(["lr_schedule=linear"])


def test_schedule_settings_alone_build_every_schedule():
    for name in SCHEDULES:
        settings = ScheduleSettings(lr_schedule=name, lr=0.1, epochs=4, lr_steps={2: 0.1})
        assert float(build_schedule(settings, STEPS_PER_EPOCH)(39)) > 0
    assert schedule_settings(make_config(lr=0.3)).lr == 0.3


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_get_config_round_trip(name):
    config = make_config(lr_schedule=name, warmup_epochs=0.5, min_lr=1e-4)
    schedule = build_schedule(config, STEPS_PER_EPOCH)
    if name == "plateau":
        schedule.state.multiplier.assign(0.25)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = [0, 3, 5, 29, 30, 55, 99]
    np.testing.assert_allclose(values(restored, steps), values(schedule, steps))


def tiny_model(optimizer):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer, "mse")
    return model


def tiny_data(batches):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * batches, 3)).astype("float32")
    return x, rng.normal(size=(4 * batches, 2)).astype("float32")


@pytest.mark.parametrize("name", ["cosine", "plateau"])
def test_weight_checkpoint_restores_learning_rate(name, tmp_path):
    config = make_config(lr_schedule=name, warmup_epochs=0.5, epochs=3)
    optimizer = build_optimizer(config, STEPS_PER_EPOCH, batch_size=4)
    model = tiny_model(optimizer)
    x, y = tiny_data(batches=7)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    if name == "plateau":
        optimizer.lr_schedule.state.multiplier.assign(0.25)
    path = tmp_path / "state.weights.h5"
    model.save_weights(path)

    fresh = build_optimizer(config, STEPS_PER_EPOCH, batch_size=4)
    resumed = tiny_model(fresh)
    fresh.build(resumed.trainable_variables)
    assert int(fresh.iterations) == 0
    resumed.load_weights(path)
    assert int(fresh.iterations) == 7
    assert float(fresh.learning_rate) == float(optimizer.learning_rate)
    assert float(fresh.learning_rate) == pytest.approx(
        float(optimizer.lr_schedule(7))
    )


def test_keras_file_restores_plateau_multiplier(tmp_path):
    config = make_config(lr_schedule="plateau")
    optimizer = build_optimizer(config, STEPS_PER_EPOCH, batch_size=4)
    model = tiny_model(optimizer)
    x, y = tiny_data(batches=3)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    optimizer.lr_schedule.state.multiplier.assign(0.125)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras").optimizer
    assert int(restored.iterations) == 3
    assert float(restored.learning_rate) == pytest.approx(0.1 * 0.125)


def test_plateau_reduces_after_patience_and_stops_at_min_lr():
    config = make_config(
        lr_schedule="plateau", plateau_patience=2, plateau_factor=0.5, min_lr=0.02
    )
    optimizer = build_optimizer(config, STEPS_PER_EPOCH, batch_size=4)
    plateau, logger = schedule_callbacks(config, optimizer)
    assert isinstance(plateau, ReduceMultiplierOnPlateau)
    assert isinstance(logger, LearningRateLogger)
    plateau.verbose = 0
    history = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    multipliers = []
    for epoch, metric in enumerate(history):
        plateau.update(epoch, {"val_mAP": metric})
        multipliers.append(optimizer.lr_schedule.multiplier)
    # Two epochs without improvement halve it; min_lr / lr = 0.2 stops it.
    expected = [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    assert multipliers == pytest.approx(expected, rel=1e-6)
    assert float(optimizer.learning_rate) == pytest.approx(0.02)


def test_plateau_warns_when_metric_missing():
    schedule = WarmupPlateau(0.1)
    plateau = ReduceMultiplierOnPlateau(schedule, factor=0.5, patience=0)
    with pytest.warns(UserWarning, match="val_mAP"):
        plateau.update(0, {"loss": 1.0})
    assert schedule.multiplier == 1.0


def test_schedule_callbacks_without_plateau():
    optimizer = build_optimizer(make_config(), STEPS_PER_EPOCH, batch_size=4)
    callbacks = schedule_callbacks(make_config(), optimizer)
    assert [type(c) for c in callbacks] == [LearningRateLogger]


class WriteMetric(keras.callbacks.Callback):
    """Adds a constant "val_mAP" to the epoch logs, like a validation callback."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_mAP"] = 0.5


def test_plateau_in_fit_sees_metric_written_by_later_callback(tmp_path):
    config = make_config(
        lr_schedule="plateau", plateau_patience=1, plateau_factor=0.5
    )
    optimizer = build_optimizer(config, steps_per_epoch=2, batch_size=4)
    model = tiny_model(optimizer)
    x, y = tiny_data(batches=2)
    log_path = tmp_path / "log.csv"
    callbacks = schedule_callbacks(config, optimizer)
    callbacks += [WriteMetric(), keras.callbacks.CSVLogger(str(log_path))]
    model.fit(x, y, batch_size=4, epochs=4, verbose=0, callbacks=callbacks)
    with open(log_path) as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f)]
    # Epoch 0 sets the best; each later epoch without improvement halves
    # the rate of the epoch after it.
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.05, 0.025], rtol=1e-6)


def test_learning_rate_logger_feeds_csv_logger(tmp_path):
    config = make_config(warmup_steps=4)
    optimizer = build_optimizer(config, steps_per_epoch=2, batch_size=4)
    model = tiny_model(optimizer)
    x, y = tiny_data(batches=2)
    log_path = tmp_path / "log.csv"
    callbacks = schedule_callbacks(config, optimizer)
    callbacks.append(keras.callbacks.CSVLogger(str(log_path)))
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=callbacks)
    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    # Rate at the first step of each epoch: steps 0, 2, 4 of a 4-step warmup.
    np.testing.assert_allclose(
        [float(row["lr"]) for row in rows], [0.025, 0.075, 0.1], rtol=1e-6
    )


def test_plateau_multiplier_is_read_inside_compiled_functions():
    schedule = WarmupPlateau(0.1)
    compiled = tf.function(lambda: schedule(tf.constant(3)))
    assert float(compiled()) == pytest.approx(0.1)
    # A traced constant would keep 0.1: the callback's change must show.
    schedule.state.multiplier.assign(0.5)
    assert float(compiled()) == pytest.approx(0.05)
