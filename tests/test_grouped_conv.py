"""The grouped convolution on TensorFlow's kernel gives Keras's results: outputs, gradients, saving, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from optional import optional_import

from backbone import get_backbone
from backbone.grouped_conv import GroupedConv2D

CASES = [  # (in, out, groups, kernel, strides, padding, dilation, side)
    (32, 32, 8, 3, 1, "same", 1, 9),
    (16, 32, 8, 3, 2, "valid", 1, 11),  # ResNeXt's strided 3x3 (padded by hand before it)
    (12, 6, 3, 3, 1, "same", 1, 7),  # more inputs than outputs per group
    (8, 8, 4, 3, 1, "same", 2, 9),  # dilated
    (8, 8, 4, 3, 2, "same", 2, 9),  # strided and dilated: Keras's own path
    (8, 16, 1, 3, 1, "same", 1, 6),  # not grouped: Keras's own path
]


def pair(cin, cout, groups, kernel, strides, padding, dilation, side):
    x = tf.constant(np.random.default_rng(0).normal(size=(3, side, side, cin)).astype(np.float32))
    if strides > 1 and dilation > 1:  # Keras refuses both at once; check that the layer still does the same
        with pytest.raises(ValueError):
            keras.layers.Conv2D(cout, kernel, strides=strides, dilation_rate=dilation).build(x.shape)
        return x, None
    made = []
    for cls in (keras.layers.Conv2D, GroupedConv2D):
        layer = cls(cout, kernel, strides=strides, padding=padding, groups=groups, dilation_rate=dilation)
        layer.build(x.shape)
        made.append(layer)
    bias = np.random.default_rng(1).normal(size=cout).astype(np.float32)
    made[0].set_weights([made[0].kernel.numpy(), bias])
    made[1].set_weights(made[0].get_weights())
    return x, made


@pytest.mark.parametrize("case", CASES, ids=lambda c: "in{}-out{}-g{}-k{}-s{}-{}-d{}".format(*c[:7]))
def test_outputs_and_gradients_match_keras(case):
    x, layers = pair(*case)
    if layers is None:
        with pytest.raises(ValueError):
            GroupedConv2D(case[1], case[3], strides=case[4], dilation_rate=case[6]).build(x.shape)
        return
    upstream = None
    results = []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            upstream = tf.constant(np.random.default_rng(2).normal(size=y.shape).astype(np.float32))
            loss = tf.reduce_sum(y * upstream)
        results.append([y] + tape.gradient(loss, [x, layer.kernel, layer.bias]))
    for reference, ours in zip(*results):
        scale = max(1.0, float(tf.reduce_max(tf.abs(reference))))
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5 * scale)


def test_grouped_case_does_not_use_xla_inside_a_function():
    # Keras's path wraps the op in a jit-compiled function: an XlaLaunch or a nested
    # __inference call with _XlaMustCompile appears in the graph. Ours is one Conv2D op.
    layer = GroupedConv2D(16, 3, padding="same", groups=4)
    layer.build((None, 8, 8, 8))
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((2, 8, 8, 8))).graph
    ops = {op.type for op in graph.get_operations()}
    assert "Conv2D" in ops
    assert not ops & {"StatefulPartitionedCall", "PartitionedCall", "XlaLaunch"}


def test_keras_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 8))
    model = keras.Model(inputs, GroupedConv2D(16, 3, padding="same", groups=4, name="g")(inputs))
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 8)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("g")) is GroupedConv2D
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_resnext_uses_it_for_every_grouped_convolution():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, get_backbone("resnext18")[0](inputs, width=0.25))
    grouped = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 8  # one 3x3 per bottleneck block, 2 blocks x 4 stages
    assert all(type(layer) is GroupedConv2D for layer in grouped)


def test_tflite_and_onnx_exports_match(tmp_path):
    inputs = keras.Input((8, 8, 8))
    model = keras.Model(inputs, GroupedConv2D(16, 3, padding="same", groups=4)(inputs))
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 8)).astype(np.float32)
    reference = model(x).numpy()
    interpreter = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert())
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), reference,
                               atol=1e-5)
    tf2onnx = optional_import("tf2onnx")
    onnxruntime = optional_import("onnxruntime")
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((None, 8, 8, 8), name="x"),),
                                          opset=17)
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    np.testing.assert_allclose(session.run(None, {"x": x})[0], reference, atol=1e-5)
