"""The fused BatchNormalization gives Keras's results: outputs, gradients, moving statistics, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from backbone.fused_batch_norm import FusedBatchNormalization


def pair(**kwargs):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (4, 5, 6, 8)).astype(np.float32))
    layers = []
    for cls in (keras.layers.BatchNormalization, FusedBatchNormalization):
        layer = cls(momentum=0.9, epsilon=1e-5, **kwargs)
        layer.build(x.shape)
        layers.append(layer)
    gamma, beta = rng.uniform(0.5, 1.5, 8).astype(np.float32), rng.normal(0, 1, 8).astype(np.float32)
    for layer in layers:
        if layer.scale:
            layer.gamma.assign(gamma)
        if layer.center:
            layer.beta.assign(beta)
        layer.moving_mean.assign(rng.normal(0, 1, 8).astype(np.float32) * 0 + 0.5)
        layer.moving_variance.assign(np.full(8, 2.0, np.float32))
    return x, layers


@pytest.mark.parametrize("kwargs", [{}, {"scale": False}, {"center": False}])
def test_training_matches_keras_outputs_gradients_and_moving_statistics(kwargs):
    x, (reference, fused) = pair(**kwargs)
    upstream = tf.constant(np.random.default_rng(1).normal(size=x.shape).astype(np.float32))
    results = []
    for layer in (reference, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x] + layer.trainable_variables)
        results.append((y, grads, layer.moving_mean.numpy(), layer.moving_variance.numpy()))
    (y0, g0, m0, v0), (y1, g1, m1, v1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m1, m0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-6)  # biased variance, as Keras keeps
    assert not np.allclose(v0, 2.0)  # the moving variance did move


def test_inference_and_frozen_layer_use_the_moving_statistics():
    x, (reference, fused) = pair()
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), rtol=1e-5, atol=1e-5)
    fused.trainable = reference.trainable = False  # a frozen backbone: inference mode even in training
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.5)


def test_mixed_precision_and_fallbacks():
    x, (reference, _) = pair()
    fused = FusedBatchNormalization(epsilon=1e-5, dtype="mixed_bfloat16")
    fused.build(x.shape)
    fused.set_weights(reference.get_weights())
    out = fused(tf.cast(x, tf.bfloat16), training=True)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(out, tf.float32), reference(x, training=True), atol=0.05)
    flat = tf.reshape(x, [4, 30, 8])  # 3-D: Keras's own path
    two = FusedBatchNormalization(epsilon=1e-5)
    keras_bn = keras.layers.BatchNormalization(epsilon=1e-5)
    np.testing.assert_allclose(two(flat, training=True), keras_bn(flat, training=True), rtol=1e-5, atol=1e-5)


def test_saved_and_loaded_with_the_model(tmp_path):
    inputs = keras.Input((6, 6, 3))
    outputs = FusedBatchNormalization(name="bn")(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 3)).astype(np.float32)
    model.fit(x, np.zeros((8, 4, 4, 4), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
