"""Runs a model over an evaluation dataset and keeps predictions, labels and image names aligned."""

import weakref

import keras
import numpy as np
import tensorflow as tf

_single_device_calls = weakref.WeakKeyDictionary()


def predict_batch(model, images):
    """`model.predict_on_batch(images)`, also correct while the model trains under a strategy.

    Keras's predict_on_batch runs a batch that is not a distributed one on every replica and
    concatenates their outputs, which repeats each row once per replica. With more than one
    replica the model is called directly instead, on one device, with its current weights.
    """
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return model.predict_on_batch(images)
    call = _single_device_calls.get(model)
    if call is None:
        call = _single_device_calls[model] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return keras.tree.map_structure(lambda t: t.numpy(), call(images))


def predict_dataset(model, dataset, progress=None):
    """Returns (logits, labels [N, L], paths [N]) for a dataset of (images, labels, paths).

    The logits have the structure of the model's outputs: one array [N, C] for the sigmoid heads,
    {group: [N, K]} for a `groups` head. Labels and paths come from the same batches as the
    predictions, so images skipped by the pipeline (unreadable files) cannot shift one against
    the other.

    Args:
        model: keras.Model. Images -> logits.
        dataset: tf.data.Dataset. Batches of (images, labels, paths), as `make_dataset` gives for
            evaluation.
        progress: callable or None. Called with the number of images of each batch done (e.g. a
            progress bar's `update`).
    """
    logits, labels, paths = [], [], []
    for images, y, p in dataset:
        outputs = keras.tree.map_structure(lambda t: np.asarray(t, np.float64), predict_batch(model, images))
        logits.append(outputs)
        labels.append(y.numpy())
        paths.extend(s.decode() for s in p.numpy())
        if progress is not None:
            progress(len(labels[-1]))
    if not logits:
        columns = dataset.element_spec[1].shape[-1] or 0
        empty = keras.tree.map_structure(lambda t: np.zeros((0, t.shape[-1])), model.output)
        return empty, np.zeros((0, columns), np.int32), []
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *logits), np.concatenate(labels), paths


def sigmoid(logits):
    # the split form never overflows in exp for large |logits|
    logits = np.asarray(logits, np.float64)
    out = np.empty_like(logits)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    e = np.exp(logits[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def softmax(logits):
    """Softmax over the last axis, in float64 (the largest logit is subtracted first: no overflow)."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def output_probabilities(logits):
    """The probabilities of a model's outputs: sigmoid of [N, C] logits, softmax of each group's {group: [N, K]}."""
    if isinstance(logits, dict):  # a groups head: one-of-K per group
        return {name: softmax(values) for name, values in logits.items()}
    return sigmoid(logits)
