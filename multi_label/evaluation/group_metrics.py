"""Attribute groups (the `groups` head): one-of-K labels per group, -1 unknown.

Label files of a groups run hold one column per group with a class index in [0, K-1] or -1; the
model has one softmax output per group. Accuracy and confusion matrices leave -1 rows out.
"""

import keras
import numpy as np
import tensorflow as tf

from multi_label.evaluation.inference import predict_dataset


def group_targets(dataset, group_names):
    """Maps a training dataset of (images, labels [batch, G]) to (images, {group: labels [batch]})."""
    names = list(group_names)
    return dataset.map(lambda images, labels: (images, {name: labels[:, i] for i, name in enumerate(names)}))


def predict_groups(model, dataset, group_names, progress=None):
    """Returns ({group: logits [N, K]}, labels [N, G], paths [N]) over a dataset of (images, labels, paths).

    Args:
        model: keras.Model. Images -> {group: logits}.
        dataset: tf.data.Dataset. Batches of (images, labels, paths).
        group_names: list[str]. The groups returned, in this order.
        progress: callable or None. Called with the number of images of each batch done.
    """
    logits, labels, paths = predict_dataset(model, dataset, progress)  # correct under a multi-replica strategy too
    return {name: logits[name] for name in group_names}, labels, paths


def output_groups(model):
    """{group: number of classes} of a `groups` head's outputs; None for a model with one output."""
    if not isinstance(model.output, dict):
        return None
    return {name: int(tensor.shape[-1]) for name, tensor in model.output.items()}


def joined_group_model(model, groups):
    """`model` with its groups' logits side by side in one output [batch, sum of K], in `groups` order.

    For code written for one output (the layer statistics of mode=debug); the layers are the
    model's own, plus the Concatenate layer `group_logits`. `summed_group_loss` splits it again.
    """
    joined = keras.layers.Concatenate(name="group_logits")([model.output[name] for name in groups])
    return keras.Model(model.inputs, joined, name=model.name)


def summed_group_loss(losses, groups):
    """The loss of `joined_group_model`: each group's loss on its slice, summed (as `model.fit` sums them).

    Args:
        losses: dict[str, keras.losses.Loss]. One per group (`build_group_losses`).
        groups: dict[str, int]. Group -> K, in label-column order (the order of the joined logits).

    Returns:
        callable. (labels [batch, G] class indices, -1 unknown; joined logits) -> scalar loss.
    """
    names, sizes = list(groups), list(groups.values())

    def loss(labels, logits):
        parts = tf.split(logits, sizes, axis=-1)
        return tf.add_n([losses[name](labels[:, i], part) for i, (name, part) in enumerate(zip(names, parts))])
    return loss


def group_accuracy(labels, logits):
    """Fraction of known labels (>= 0) whose class has the highest logit; None when none is known.

    Args:
        labels: array-like. [N] class indices, -1 unknown.
        logits: array-like. [N, K] scores.
    """
    labels = np.asarray(labels)
    known = labels >= 0
    if not known.any():
        return None
    return float(np.mean(np.argmax(np.asarray(logits)[known], axis=1) == labels[known]))


def confusion_matrix(labels, logits, num_classes):
    """Counts [K, K]: row = true class, column = predicted class (highest logit); -1 rows left out."""
    labels = np.asarray(labels)
    known = labels >= 0
    predicted = np.argmax(np.asarray(logits)[known], axis=1) if known.any() else np.zeros(0, int)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels[known], predicted), 1)
    return matrix


def evaluate_groups(labels, logits, groups):
    """Per-group accuracy, known-label count and confusion matrix, and their mean accuracy.

    Args:
        labels: array-like. [N, G] class indices per group, -1 unknown.
        logits: dict[str, array-like]. Group -> [N, K] scores.
        groups: dict[str, int]. Group -> K, in label-column order.

    Returns:
        dict. {"accuracy": mean over groups with known labels (None if none has any),
        "groups": {group: {"accuracy", "known", "confusion_matrix" (list of rows)}}}.
    """
    labels = np.asarray(labels)
    per_group = {}
    for column, (name, size) in enumerate(groups.items()):
        per_group[name] = {
            "accuracy": group_accuracy(labels[:, column], logits[name]),
            "known": int((labels[:, column] >= 0).sum()),
            "confusion_matrix": confusion_matrix(labels[:, column], logits[name], size).tolist(),
        }
    defined = [g["accuracy"] for g in per_group.values() if g["accuracy"] is not None]
    return {"accuracy": float(np.mean(defined)) if defined else None, "groups": per_group}


def format_confusion_matrix(matrix):
    """A confusion matrix as aligned text: rows true classes, columns predicted ones."""
    matrix = np.asarray(matrix)
    width = max(4, len(str(matrix.max(initial=0))) + 1)
    header = "true\\pred" + "".join(f"{j:>{width}}" for j in range(matrix.shape[1]))
    rows = [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join([header, *rows])
