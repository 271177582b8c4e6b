"""Query2Label and ML-Decoder: their forward passes against NumPy transcriptions of the papers'
equations, -1 labels through every loss, mixed precision, strategies, `.keras`, SavedModel and
TFLite export with the parity check, and ML-Decoder's cost in the number of classes."""

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import typing

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT
from tiny_run import save_tiny_model, tiny_config

import configs
from multi_label.heads import HEADS, HeadSettings
from multi_label.heads.decoder import sine_position_encoding
from multi_label.heads.ml_decoder import MLDecoderHead, default_groups
from multi_label.heads.query2label import Query2LabelHead
from multi_label.losses import LOSSES, LossSettings, build_loss
from multi_label.model import ModelSettings, build_model
from multi_label.optim.weight_decay import apply_weight_decay
from multi_label.tasks.convert import run_convert
from utils.config import ConfigError, load_config

QUERY_HEADS = typing.get_args(configs.QueryHead)
SMALL = {"decoder_width": 16, "decoder_heads": 2, "decoder_feedforward": 32}  # fast, every code path kept
LABELS = np.array([[1, 0, -1, 1, 0], [-1, -1, 1, 0, 1], [0, 1, 1, -1, 0], [1, 1, 0, 0, -1]], "float32")
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


# ------------------------------------------------------------------ NumPy transcriptions


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * gamma + beta


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(w, name, query, key, value):
    """Multi-head attention: per head softmax(Q K^T / sqrt(d_head)) V, heads concatenated, projected."""
    q, k, v = (np.einsum("btd,dhk->bthk", x, w[f"{name}/{part}/kernel"]) + w[f"{name}/{part}/bias"]
               for x, part in ((query, "query"), (key, "key"), (value, "value")))
    weights = softmax(np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1]))
    heads = np.einsum("bhts,bshk->bthk", weights, v)
    return np.einsum("bthk,hkd->btd", heads, w[f"{name}/attention_output/kernel"]) + w[f"{name}/attention_output/bias"]


def decoder_layer(w, name, t, memory, keys, query_position, query_block):
    """DETR's post-norm decoder layer at inference (dropout is the identity), or ML-Decoder's ("residual")."""
    norm = lambda x, i: layer_norm(x, w[f"{name}/norm{i}/gamma"], w[f"{name}/norm{i}/beta"])
    if query_block == "self_attention":
        q = t + query_position
        t = norm(t + attention(w, f"{name}/self_attention", q, q, t), 1)
    elif query_block == "residual":
        t = norm(t + t, 1)  # tgt = tgt + dropout1(tgt)
    q = t if query_position is None else t + query_position
    t = norm(t + attention(w, f"{name}/cross_attention", q, keys, memory), 2)
    hidden = np.maximum(t @ w[f"{name}/linear1/kernel"] + w[f"{name}/linear1/bias"], 0)
    return norm(t + hidden @ w[f"{name}/linear2/kernel"] + w[f"{name}/linear2/bias"], 3)


def detr_sine(height, width, channels):
    """DETR's PositionEmbeddingSine(normalize=True), step by step as in its code; [h * w, channels]."""
    ones = np.ones((height, width))
    y, x = ones.cumsum(0), ones.cumsum(1)
    y, x = y / (y[-1:, :] + 1e-6) * 2 * np.pi, x / (x[:, -1:] + 1e-6) * 2 * np.pi
    n = channels // 2
    dim_t = 10000 ** (2 * (np.arange(n) // 2) / n)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = np.stack((np.sin(px[..., 0::2]), np.cos(px[..., 1::2])), axis=3).reshape(height, width, n)
    py = np.stack((np.sin(py[..., 0::2]), np.cos(py[..., 1::2])), axis=3).reshape(height, width, n)
    return np.concatenate([py, px], axis=-1).reshape(height * width, channels)


def query2label_reference(w, features, layers):
    b, h, wd, c = features.shape
    memory = (features @ w["input_projection/kernel"] + w["input_projection/bias"]).reshape(b, h * wd, -1)
    keys = memory + detr_sine(h, wd, memory.shape[-1])[None]
    queries = w["query_embedding"][None]
    t = np.zeros((b, *queries.shape[1:]))
    for i in range(layers):
        # Query2Label's code drops the first layer's self-attention (its input is zero)
        t = decoder_layer(w, f"decoder{i}", t, memory, keys, queries, "none" if i == 0 else "self_attention")
    t = layer_norm(t, w["final_norm/gamma"], w["final_norm/beta"])
    return (t * w["classifier_kernel"]).sum(-1) + w["classifier_bias"]  # GroupWiseLinear


def ml_decoder_reference(w, features, layers, num_classes):
    b, h, wd, c = features.shape
    memory = np.maximum(features.reshape(b, h * wd, c) @ w["embedding/kernel"] + w["embedding/bias"], 0)
    t = np.broadcast_to(w["queries"][None], (b, *w["queries"].shape))
    for i in range(layers):
        t = decoder_layer(w, f"decoder{i}", t, memory, memory, None, "residual")
    groups, _, k = w["group_kernel"].shape
    out = np.zeros((b, groups, k))
    for g in range(groups):  # GroupFC: query g gives k logits through its own d x k matrix
        out[:, g, :] = t[:, g, :] @ w["group_kernel"][g]
    return out.reshape(b, groups * k)[:, :num_classes] + w["group_bias"]


def random_weights(layer, seed):
    """Sets every weight of `layer` to a fixed random value; returns them by path inside the layer, in float64."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))
    return {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}


def fixed_features(seed=0):
    # 3 x 4: rows and columns differ, so a transposed position code would show
    return np.random.default_rng(seed).normal(size=(2, 3, 4, 6)).astype("float32")


# ------------------------------------------------------------------ the equations


def test_sine_position_encoding_is_detrs():
    got = np.asarray(sine_position_encoding(3, 4, 8))
    np.testing.assert_allclose(got, detr_sine(3, 4, 8), **TOLERANCE)
    assert got[0, 0] == pytest.approx(math.sin(2 * math.pi / 3), abs=1e-6)  # row 1 of 3, channel 0: sin(y)
    assert got[5, 4] == pytest.approx(math.sin(2 * 2 * math.pi / 4), abs=1e-6)  # token 5 = row 2, column 2


# Keras's attention takes another path without dropout (ops.dot_product_attention): both are checked.
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_query2label_matches_numpy(dropout):
    layer = Query2LabelHead(5, width=8, num_layers=2, heads=2, feedforward=12, dropout=dropout, name="head")
    features = fixed_features()
    layer(features)
    weights = random_weights(layer, seed=1)
    got = np.asarray(layer(features, training=False))
    np.testing.assert_allclose(got, query2label_reference(weights, features.astype(np.float64), 2), **TOLERANCE)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("groups", [2, 5])  # 2: k = 3 classes per group, 6 outputs cut to 5; 5: one each
def test_ml_decoder_matches_numpy(groups, dropout):
    layer = MLDecoderHead(5, groups, width=8, num_layers=2, heads=2, feedforward=12, dropout=dropout, name="head")
    features = fixed_features()
    layer(features)
    weights = random_weights(layer, seed=2)
    assert weights["group_kernel"].shape == (groups, 8, math.ceil(5 / groups))
    got = np.asarray(layer(features, training=False))
    np.testing.assert_allclose(got, ml_decoder_reference(weights, features.astype(np.float64), 2, 5), **TOLERANCE)


def test_ml_decoder_queries_are_fixed_and_query2label_queries_learn():
    ml = MLDecoderHead(5, 3, width=8, heads=2, feedforward=12)
    q2l = Query2LabelHead(5, width=8, heads=2, feedforward=12)
    ml(fixed_features()), q2l(fixed_features())
    assert not ml.queries.trainable and all(v is not ml.queries for v in ml.trainable_weights)
    assert any(v is ml.queries for v in ml.non_trainable_weights) and q2l.query_embedding.trainable


@pytest.mark.parametrize("head", QUERY_HEADS)
def test_l2_weight_decay_reaches_the_decoder_and_the_classifier(head):
    model = feature_model(head)
    counts = apply_weight_decay(model, conv=5e-5, bn_gamma=0.0, verbose=False)
    layer = model.get_layer(head)
    kernels = [v for v in layer.trainable_weights if v.path.endswith("kernel")]  # dense, attention, classifier
    assert counts["kernels"] == 1 + len(kernels)  # and the convolution before the head
    assert layer.kernel.regularizer is not None and len(model.losses) == counts["kernels"]


def test_default_groups_are_the_papers():
    assert [default_groups(c) for c in (1, 80, 100, 101, 9605)] == [1, 80, 100, 100, 100]
    settings = HeadSettings(head="ml_decoder", **SMALL)
    logits = HEADS["ml_decoder"].build(keras.Input((3, 3, 8)), 150, settings)
    assert logits.shape == (None, 150)
    with pytest.raises(ConfigError, match=r"^ml_decoder_groups=6 with 5 label columns: .* expected at most 5"):
        HEADS["ml_decoder"].build(keras.Input((3, 3, 8)), 5, dataclasses.replace(settings, ml_decoder_groups=6))


# ------------------------------------------------------------------ ML-Decoder's cost in the classes


def group_model(classes, groups=100):
    inputs = keras.Input((7, 7, 32))
    return keras.Model(inputs, MLDecoderHead(classes, groups, width=16, heads=2, feedforward=32, name="head")(inputs))


def test_ml_decoder_grows_only_in_its_group_layer():
    shapes = {}
    for classes in (1000, 10000):
        layer = group_model(classes).get_layer("head")
        shapes[classes] = {v.path: tuple(v.shape) for v in layer.weights}
    group_layer = {"head/group_kernel", "head/group_bias"}
    assert {k: v for k, v in shapes[1000].items() if k not in group_layer} == \
           {k: v for k, v in shapes[10000].items() if k not in group_layer}
    assert (shapes[1000]["head/group_kernel"], shapes[10000]["head/group_kernel"]) == ((100, 16, 10), (100, 16, 100))
    assert (shapes[1000]["head/group_bias"], shapes[10000]["head/group_bias"]) == ((1000,), (10000,))
    x = np.random.default_rng(0).normal(size=(2, 7, 7, 32)).astype("float32")
    assert group_model(10000)(x).shape == (2, 10000)


def test_only_the_query_heads_read_the_decoder_settings():
    # ties configs.QueryHead to the code: decoder_width changes the parameters of exactly those heads
    def parameters(head, **settings):
        groups = {"groups": {"a": 2, "b": 2, "c": 2}} if head == "groups" else {}
        model = build_model(ModelSettings(head=head, backbone_width=0.125, graph_hidden=8, **groups, **settings), 3,
                            train_labels=np.array([[1, 0, 1], [0, 1, 1]]))
        return model.count_params()

    changed = {head for head in HEADS if parameters(head, decoder_width=8) != parameters(head, decoder_width=16)}
    assert changed == set(QUERY_HEADS)


# ------------------------------------------------------------------ training: -1 labels, losses, precision


def feature_model(head, policy=None):
    """Feature map [4, 4, 8] -> (a convolution in `policy`) -> the head: what the head sees in the full model."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 8))
    x = keras.layers.Conv2D(8, 1, dtype=policy, name="conv")(inputs)
    logits = HEADS[head].build(x, LABELS.shape[1], HeadSettings(head=head, **SMALL))
    return keras.Model(inputs, logits)


def features(n=None, seed=3):
    n = len(LABELS) if n is None else n
    return np.random.default_rng(seed).normal(size=(n, 4, 4, 8)).astype("float32")


def train_step(model, loss, optimizer):
    """One step, eagerly (model.fit's tracing of a decoder costs seconds); returns the loss."""
    with tf.GradientTape() as tape:
        value = loss(LABELS, model(features(), training=True))
        scaled = optimizer.scale_loss(value)
    optimizer.apply(tape.gradient(scaled, model.trainable_weights), model.trainable_weights)
    return float(value)


@pytest.mark.parametrize("head", QUERY_HEADS)
def test_unknown_labels_get_no_gradient(head):
    model = feature_model(head)
    logits = tf.Variable(model(features(), training=True))
    with tf.GradientTape(persistent=True) as tape:
        value = build_loss(LossSettings())(LABELS, logits)
        through_head = build_loss(LossSettings())(LABELS, model(features(), training=False))
    assert np.isfinite(float(value))
    gradient = tape.gradient(value, logits).numpy()
    assert (gradient[LABELS < 0] == 0).all() and (gradient[LABELS >= 0] != 0).all()
    head_gradients = tape.gradient(through_head, model.trainable_weights)
    assert all(np.isfinite(g.numpy()).all() for g in head_gradients)
    assert sum(float(np.abs(g.numpy()).sum()) for g in head_gradients) > 0


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("head", QUERY_HEADS)
def test_every_loss_trains_one_step(head, loss):
    model = feature_model(head)
    before = [w.numpy().copy() for w in model.trainable_weights]
    value = train_step(model, build_loss(LossSettings(loss=loss), LABELS), keras.optimizers.Adam(1e-2))
    assert np.isfinite(value) and value > 0
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("head", QUERY_HEADS)
def test_mixed_precision_gives_float32_logits_and_trains(head, policy):
    model = feature_model(head, policy=policy)
    assert model.get_layer("conv").compute_dtype != "float32"
    assert model.get_layer(head).compute_dtype == "float32" and model.output.dtype == "float32"
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)  # as the trainer sets it for the whole model
    try:
        full = build_model(ModelSettings(head=head, backbone_width=0.125, **SMALL), 5)
        logits = full(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32"), training=False)
        assert logits.dtype == "float32" and np.isfinite(logits).all()
        assert full.get_layer(head).dtype_policy.name == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    # loss scaling, as model.fit adds it under mixed_float16
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-2))
    assert np.isfinite(train_step(model, build_loss(LossSettings()), optimizer))
    assert np.isfinite(model.get_layer("conv").kernel.numpy()).all()


@pytest.mark.parametrize("head", QUERY_HEADS)
def test_trained_head_round_trips_through_keras_file(head, tmp_path):
    model = feature_model(head)
    train_step(model, build_loss(LossSettings()), keras.optimizers.Adam(1e-2))  # weights away from their start
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    for a, b in zip(model.weights, loaded.weights):  # fixed ML-Decoder queries included
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = features(3, seed=4)
    np.testing.assert_array_equal(model(x, training=False), loaded(x, training=False))


@pytest.mark.parametrize("head", QUERY_HEADS)
def test_builds_and_trains_in_a_strategy_scope(head):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = feature_model(head)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=build_loss(LossSettings()))
    history = model.fit(features(), LABELS, batch_size=len(LABELS), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from multi_label.heads import HEADS, HeadSettings
    from multi_label.losses import LossSettings, build_loss

    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 3, 3, 6)).astype("float32")
    labels = rng.integers(-1, 2, size=(8, 5)).astype("float32")
    labels[:4, :2] = -1  # the replicas see different numbers of known labels

    def fit(head, scope):
        with scope:
            keras.utils.set_random_seed(0)
            inputs = keras.Input((3, 3, 6))
            settings = HeadSettings(head=head, decoder_width=8, decoder_heads=2, decoder_feedforward=16,
                                    decoder_dropout=0.0)
            model = keras.Model(inputs, HEADS[head].build(inputs, 5, settings))
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=build_loss(LossSettings()), jit_compile=False)
        history = model.fit(features, labels, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return history.history["loss"], model.get_weights()

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for head in ("query2label", "ml_decoder"):
        single_losses, single_weights = fit(head, tf.name_scope("single"))
        mirrored_losses, mirrored_weights = fit(head, strategy.scope())
        np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4)
        for got, expected in zip(mirrored_weights, single_weights):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    print("mirrored ok")
""")


# A fresh interpreter splits the CPU into two devices; its TensorFlow start-up is most of the cost.
@pytest.mark.slow
def test_two_replicas_train_as_one_device():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored ok" in result.stdout


# ------------------------------------------------------------------ export


@pytest.fixture(scope="module", params=QUERY_HEADS)
def parity(request, data_dir, tmp_path_factory):
    """parity.json of mode=convert (Keras, SavedModel, TFLite float32) for a tiny untrained model with the head."""
    root = tmp_path_factory.mktemp(request.param)
    config = tiny_config(data_dir, head=request.param, **SMALL, formats=("keras", "savedmodel", "tflite_float32"),
                         parity_images=0, checkpoint=str(root / "models/tiny/best.keras"))
    save_tiny_model(config, root / "models/tiny")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the export goes to models/<run_name>/export/ under the working folder
        run_convert(config)
    return json.loads((root / "models/tiny/export/parity.json").read_text())


# The tiny images give a 1x1 feature map: one token, whose attention softmax Keras warns about.
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_savedmodel_and_tflite_float32_agree_with_keras(parity):
    assert parity["images"] == 12
    for name in ("keras", "savedmodel (uint8)", "savedmodel (bytes)", "tflite_float32"):
        assert parity["formats"][name]["max_abs_diff"] < 1e-4, name
        assert parity["formats"][name]["meets_bar"], name


# ------------------------------------------------------------------ settings


OUT_OF_RANGE = [
    (["head=query2label", "decoder_width=7"], "decoder_width=7 is out of range; expected an even integer >= 2"),
    (["head=query2label", "decoder_layers=0"], "decoder_layers=0 is out of range; expected None or an integer >= 1"),
    (["head=ml_decoder", "decoder_dropout=1.0"], "decoder_dropout=1.0 is out of range; expected a number in [0, 1)"),
    (["head=ml_decoder", "ml_decoder_groups=0"], "ml_decoder_groups=0 is out of range; expected None or an integer"),
    (["head=ml_decoder", "decoder_feedforward=0"], "decoder_feedforward=0 is out of range; expected an integer >= 1"),
]


@pytest.mark.parametrize("arguments, message", OUT_OF_RANGE)
def test_decoder_settings_are_checked_before_any_work(arguments, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        load_config(arguments)


def test_decoder_settings_load():
    config = load_config(["head=ml_decoder", "ml_decoder_groups=20", "decoder_layers=3", "decoder_heads=4"])
    assert (config.ml_decoder_groups, config.decoder_layers, config.decoder_heads) == (20, 3, 4)
    assert load_config(["head=linear", "decoder_width=128"]).decoder_width == 128  # a working default: left alone
