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


def predict_dataset(model, dataset):
    """Returns (logits [N, C], labels [N, C], paths [N]) for a dataset of (images, labels, paths).

    Labels and paths come from the same batches as the predictions, so images skipped by the
    pipeline (unreadable files) cannot shift one against the other.
    """
    logits, labels, paths = [], [], []
    for images, y, p in dataset:
        logits.append(np.asarray(predict_batch(model, images), np.float64))
        labels.append(y.numpy())
        paths.extend(s.decode() for s in p.numpy())
    if not logits:
        return np.zeros((0, model.output_shape[-1])), np.zeros((0, model.output_shape[-1]), np.int32), []
    return np.concatenate(logits), np.concatenate(labels), paths


def sigmoid(logits):
    # the split form never overflows in exp for large |logits|
    logits = np.asarray(logits, np.float64)
    out = np.empty_like(logits)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    e = np.exp(logits[~positive])
    out[~positive] = e / (1.0 + e)
    return out
