"""ProgressLines: a line within a long epoch when the output is not a terminal."""

import re

import keras
import numpy as np

from multi_label.training import callbacks
from multi_label.training.callbacks import ProgressLines


def test_a_line_per_interval_with_step_rate_and_running_loss(capsys, monkeypatch):
    clock = iter([0.0, 100.0, 130.0, 200.0, 250.0, 400.0])  # made, epoch start, then one per batch end
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    progress = ProgressLines(steps=10, batch_size=32, interval=60)
    progress.on_epoch_begin(2)
    for batch, loss in enumerate([0.9, 0.8, 0.7]):  # at 30 s (too soon), 100 s, 150 s (too soon after 100 s)
        progress.on_train_batch_end(batch, {"loss": loss})
    progress.on_train_batch_end(9, {"loss": 0.6})  # the last step: Keras's epoch line follows, no progress line
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Epoch 3: step 2/10, 0.6 images/s, loss 0.8000, 1.7 min into the epoch"]


def test_the_default_interval_is_the_module_constant(monkeypatch):
    assert ProgressLines(steps=5, batch_size=8).interval == callbacks.PROGRESS_INTERVAL_S == 180
    monkeypatch.setattr(callbacks, "PROGRESS_INTERVAL_S", 0)
    assert ProgressLines(steps=5, batch_size=8).interval == 0


def test_in_model_fit_every_step_but_the_last(capsys):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((16, 3), np.float32), np.zeros((16, 1), np.float32)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[ProgressLines(steps=4, batch_size=4, interval=0)])
    lines = capsys.readouterr().out.splitlines()
    steps = [re.match(r"Epoch (\d): step (\d)/4, [\d.]+ images/s, loss [\d.]+, [\d.]+ min into the epoch$", line)
             .groups() for line in lines]
    assert steps == [(e, s) for e in "12" for s in "123"]
