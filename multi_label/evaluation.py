"""Runs a model over an evaluation dataset and keeps predictions, labels and image names aligned."""

import numpy as np


def predict_dataset(model, dataset):
    """Returns (logits [N, C], labels [N, C], paths [N]) for a dataset of (images, labels, paths).

    Labels and paths come from the same batches as the predictions, so images skipped by the
    pipeline (unreadable files) cannot shift one against the other.
    """
    logits, labels, paths = [], [], []
    for images, y, p in dataset:
        logits.append(np.asarray(model.predict_on_batch(images), np.float64))
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
