"""What a network costs: parameters, multiply-accumulates, and the CPU time of a batch.

Multiply-accumulates (MACs; FLOPs are often quoted as twice these) are counted for every
convolution, depthwise convolution and dense layer at the top level of the model: each output
position costs one MAC per kernel weight, so a layer costs (output positions) x (kernel size),
which is [h, w, k, k, c_in / groups, c_out] for a convolution. BatchNorm, activations, pooling and
the layers inside a head's own sublayers (a decoder's attention) are left out; they are the same
before and after pruning.
"""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

COUNTED = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
WARMUP_RUNS = 3  # the first calls trace and compile
TIMED_ROUNDS = 30  # calls of each model, in turns


def parameter_count(model):
    """Every weight of the model, trainable or not (BatchNorm statistics included)."""
    return int(model.count_params())


def multiply_accumulates(model, image_size):
    """MACs of one image of `image_size` x `image_size` pixels (module docstring).

    Args:
        model: keras.Model. A functional model taking images [batch, height, width, 3].
        image_size: int. The side of the square input.
    """
    counted = [layer for layer in model.layers if isinstance(layer, COUNTED)]
    if not counted:
        return 0
    probe = keras.Model(model.inputs, [layer.output for layer in counted])
    outputs = probe.compute_output_spec(keras.KerasTensor((1, image_size, image_size, model.input_shape[-1])))
    return int(sum(int(np.prod(spec.shape[1:-1])) * int(np.prod(layer.kernel.shape))
                   for layer, spec in zip(counted, outputs)))


def cpu_latencies(models, image_size, batch, seed=0):
    """Median seconds of `predict_on_batch` for each model, on CPU copies timed in turns.

    The copies (same layers and weights, placed on the CPU) are timed on the same random images,
    so a machine with a GPU gives the CPU figures too. They take turns, call by call: a shared
    machine's speed drifts by tens of percent within minutes, and timed in turns the models share
    the drift, so their ratio holds even where the absolute figures do not.

    Args:
        models: list of keras.Model. Images in [0, 255] -> outputs.
        image_size: int. The side of the square input.
        batch: int. Images per call.
        seed: int. Of the random images.

    Returns:
        list of float. Seconds per call, one per model.
    """
    images = np.random.default_rng(seed).uniform(0, 255, (batch, image_size, image_size, 3)).astype("float32")
    with tf.device("/CPU:0"):
        copies = []
        for model in models:
            copy = keras.models.clone_model(model)
            copy.set_weights(model.get_weights())
            for _ in range(WARMUP_RUNS):
                copy.predict_on_batch(images)
            copies.append(copy)
        times = [[] for _ in copies]
        for _ in range(TIMED_ROUNDS):
            for copy, spent in zip(copies, times):
                start = time.perf_counter()
                copy.predict_on_batch(images)
                spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def measure(models, image_size):
    """Per model: parameters, MACs of one image, and CPU seconds and images per second at batch 1 and 32.

    Args:
        models: list of keras.Model. Images in [0, 255] -> outputs; timed in turns (`cpu_latencies`).
        image_size: int. The side of the square input.

    Returns:
        list of dict. One per model, in order.
    """
    figures = [{"parameters": parameter_count(model), "macs": multiply_accumulates(model, image_size)}
               for model in models]
    for batch in (1, 32):
        for entry, seconds in zip(figures, cpu_latencies(models, image_size, batch)):
            entry[f"cpu_ms_batch{batch}"] = 1000.0 * seconds
            entry[f"cpu_images_per_second_batch{batch}"] = batch / seconds
    return figures
