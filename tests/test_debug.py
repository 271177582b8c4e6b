"""Debug mode: per-layer statistics of one batch find dead, exploding and non-finite layers."""

import csv
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_run import save_tiny_model, tiny_config

from multi_label.evaluation.layer_statistics import COLUMNS, first_nonfinite, layer_statistics
from multi_label.losses import build_loss
from multi_label.model import build_model
from multi_label.tasks.debug import run_debug
from multi_label.tasks.settings import loss_settings, model_settings
from utils.config import ConfigError


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (4, 32, 32, 3)), tf.float32)
    labels = tf.constant(rng.integers(-1, 2, (4, 10)), tf.int32)
    return images, labels


def tiny_model(data_dir):
    config = tiny_config(data_dir)
    keras.utils.set_random_seed(0)
    return config, build_model(model_settings(config), 10)


def by_layer(rows):
    return {row["layer"]: row for row in rows}


def test_run_debug_writes_table_csv_and_histograms(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir)
    computed = []  # the rows run_debug computes, to compare with the CSV it writes

    def keep_rows(*args):
        result = layer_statistics(*args)
        computed.append(result[0])
        return result

    monkeypatch.setattr("multi_label.tasks.debug.layer_statistics", keep_rows)
    run_debug(config)
    (rows,) = computed
    out = capsys.readouterr().out
    assert "Layer statistics of one training batch of 8 images through a freshly initialised" in out
    with open(tmp_path / "models" / "tiny" / "debug" / "layer_stats.csv") as f:
        saved = list(csv.DictReader(f))
    assert list(saved[0]) == COLUMNS and [r["layer"] for r in saved] == [r["layer"] for r in rows]
    assert saved[-1]["layer"] == "logits" and saved[-1]["shape"] == "8x10"
    layers = by_layer(rows)
    # each residual branch ends in a zero-initialised BN gamma: flagged as such, not as dead
    assert layers["resnet18_s1_b1_bn2"]["flags"] == "zero gamma" and layers["resnet18_s1_b1_bn2"]["out_zeros"] == 1
    assert "zero grad" in layers["resnet18_s1_b1_conv1"]["flags"]
    assert not any(flag in row["flags"] for row in rows for flag in ("nan/inf", "exploding", "dead"))
    assert layers["resnet18_stem_relu"]["out_zeros"] == pytest.approx(0.5, abs=0.15)
    events = list((tmp_path / "logs" / "tiny" / "debug").iterdir())
    assert len(events) == 1 and events[0].name.startswith("events.out.tfevents.")


def test_gradient_statistics_are_the_true_gradients(data_dir, batch):
    config, model = tiny_model(data_dir)
    loss = build_loss(loss_settings(config))
    rows, tensors, value = layer_statistics(model, loss, *batch)
    with tf.GradientTape() as tape:
        reference = loss(batch[1], model(batch[0], training=True))
    kernel, bias = tape.gradient(reference, model.get_layer("logits").trainable_weights)
    assert value == pytest.approx(float(reference), rel=1e-5)
    expected = np.sqrt(np.sum(np.square(kernel)) + np.sum(np.square(bias)))
    assert by_layer(rows)["logits"]["weight_grad_norm"] == pytest.approx(float(expected), rel=1e-4)
    kinds = {kind for _, kind, _ in tensors}
    assert kinds == {"activation", "gradient", "weight", "weight_gradient"}


def test_broken_layers_are_flagged(data_dir, batch):
    config, model = tiny_model(data_dir)
    stem = model.get_layer("resnet18_stem_conv")
    kernel = stem.kernel.numpy()
    stem.kernel.assign(np.zeros(kernel.shape))  # constant input to the stem BN: all zeros after ReLU
    rows = by_layer(layer_statistics(model, build_loss(loss_settings(config)), *batch)[0])
    assert "dead" in rows["resnet18_stem_relu"]["flags"] and rows["resnet18_stem_relu"]["dead_channels"] == 1
    stem.kernel.assign(kernel)

    logits = model.get_layer("logits")
    logits.kernel.assign(logits.kernel.numpy() * 1e7)
    rows = by_layer(layer_statistics(model, build_loss(loss_settings(config)), *batch)[0])
    assert "exploding" in rows["logits"]["flags"] and "dead" not in rows["resnet18_stem_relu"]["flags"]

    conv = model.get_layer("resnet18_s2_b1_conv1")
    kernel = conv.kernel.numpy()
    kernel[0, 0, 0, 0] = np.nan
    conv.kernel.assign(kernel)
    rows = by_layer(layer_statistics(model, build_loss(loss_settings(config)), *batch)[0])
    assert "nan/inf" in rows["resnet18_s2_b1_conv1"]["flags"] and rows["resnet18_s2_b1_conv1"]["out_nan"] > 0
    assert rows["resnet18_s1_b1_conv1"]["out_nan"] == 0  # upstream: only its gradient turns NaN
    assert first_nonfinite(list(rows.values())) == "resnet18_s2_b1_conv1"


def test_checkpoint_is_used_when_given(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config, model = tiny_model(data_dir)
    model.save("m.keras")
    run_debug(dataclasses.replace(config, checkpoint="m.keras", run_name="other"))
    assert "through m.keras" in capsys.readouterr().out
    assert (tmp_path / "models" / "other" / "debug" / "layer_stats.csv").is_file()


def test_checkpoint_of_another_head_stops_before_reading_labels(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    groups = tiny_config(data_dir, head="groups", groups={"pos1": 10, "pos2": 10})
    # a groups checkpoint with settings that do not say so: named before the (missing) label file is read
    path, _ = save_tiny_model(groups, "run", class_names=["pos1", "pos2"])
    with pytest.raises(ConfigError, match=rf"^checkpoint={path!r} has a head='groups' \(one softmax per group\), not "
                                          r"the sigmoid outputs of head='linear'"):
        run_debug(tiny_config(data_dir, checkpoint=path, train_labels="missing.csv"))
    # and the other way round: a sigmoid checkpoint with head='groups'
    path, _ = save_tiny_model(tiny_config(data_dir), "sigmoid")
    with pytest.raises(ConfigError, match=rf"^checkpoint={path!r} has one sigmoid output per class \(10\), not "
                                          r"head='groups'"):
        run_debug(dataclasses.replace(groups, checkpoint=path, train_labels="missing.csv"))
