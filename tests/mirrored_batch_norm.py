"""Run as a script by tests/test_distribute.py: one training step of a tiny ResNet-18 with BatchNorm
training, under MirroredStrategy over two logical CPU devices and on one device, with the same
global batch and the same initial weights. Prints a JSON dict of what the test compares.

A separate process: the CPU can be split into logical devices only before TensorFlow starts.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from configs import Config  # noqa: E402
from multi_label.model import build_model  # noqa: E402
from multi_label.tasks.settings import model_settings  # noqa: E402
from multi_label.training.distribute import build_strategy, training_scope  # noqa: E402

GLOBAL_BATCH, CLASSES = 16, 3


def trained(strategy, images, labels):
    """The model after one SGD step on the global batch, built and stepped under `strategy`."""
    settings = model_settings(Config(), backbone_width=0.125, image_size=32, pooling="avg")
    with training_scope(strategy, "float32"):
        keras.utils.set_random_seed(0)
        model = build_model(settings, CLASSES)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH), epochs=1, verbose=0)
    return model


def main():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (GLOBAL_BATCH, 32, 32, 3)).astype("float32")
    labels = (rng.uniform(size=(GLOBAL_BATCH, CLASSES)) > 0.5).astype("float32")
    one = trained(build_strategy("none"), images, labels)
    two_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = trained(two_strategy, images, labels)
    # The first BatchNorm's input is the same in both runs (the stem conv, untrained yet): its statistics per
    # half batch, as each replica computes them, are known exactly.
    bn = next(layer for layer in one.layers if isinstance(layer, keras.layers.BatchNormalization))
    keras.utils.set_random_seed(0)
    fresh = build_model(model_settings(Config(), backbone_width=0.125, image_size=32, pooling="avg"), CLASSES)
    stem = keras.Model(fresh.inputs, fresh.get_layer(bn.name).input)(images).numpy().astype("float64")
    halves = [stem[: GLOBAL_BATCH // 2], stem[GLOBAL_BATCH // 2:]]
    m = bn.momentum
    out = {
        "replicas": two_strategy.num_replicas_in_sync,
        "first_bn": bn.name,
        "mean_one_vs_two": float(np.abs(one.get_layer(bn.name).moving_mean.numpy()
                                        - two.get_layer(bn.name).moving_mean.numpy()).max()),
        "mean_two_vs_whole_batch": float(np.abs(two.get_layer(bn.name).moving_mean.numpy()
                                                - (1 - m) * stem.mean((0, 1, 2))).max()),
        "variance_two_vs_mean_of_halves": float(np.abs(
            two.get_layer(bn.name).moving_variance.numpy()
            - (m + (1 - m) * np.mean([h.var((0, 1, 2)) for h in halves], axis=0))).max()),
        "variance_one_vs_whole_batch": float(np.abs(one.get_layer(bn.name).moving_variance.numpy()
                                                    - (m + (1 - m) * stem.var((0, 1, 2)))).max()),
        "weights_max_diff": max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights())),
        "weights_max_step": max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), fresh.get_weights())),
    }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
