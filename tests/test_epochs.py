"""How many steps make an epoch: whole batches, and whole executions of steps_per_execution."""

import numpy as np
import pytest

from multi_label.training.epochs import steps_per_epoch
from utils.config import ConfigError

LABELS = np.zeros((40, 3), np.int32)


def test_whole_batches():
    assert steps_per_epoch(LABELS, 8) == 5 and steps_per_epoch(LABELS, 8, replicas=2) == 2


def test_an_epoch_is_whole_executions_and_says_so(capsys):
    # Keras runs each execution in full: 5 steps at 2 a call would take 6 batches from the stream
    assert steps_per_epoch(LABELS, 8, steps_per_execution=5) == 5 and capsys.readouterr().out == ""
    assert steps_per_epoch(LABELS, 8, steps_per_execution=2) == 4
    note = "note: steps_per_execution=2 runs whole groups of steps: an epoch is 4 steps, not 5\n"
    assert capsys.readouterr().out == note
    with pytest.raises(ConfigError, match=r"steps_per_execution=8 is more than the 5 steps of an epoch"):
        steps_per_epoch(LABELS, 8, steps_per_execution=8)


def test_keras_runs_whole_executions():
    # the reason: an epoch of 5 steps at 2 a call runs 6 (the optimizer counts them)
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    x, y = np.zeros((40, 2), np.float32), np.zeros((40, 1), np.float32)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(2).repeat(), steps_per_epoch=5, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 6
