"""Attribute groups (the `groups` head): one-of-K labels per group, -1 unknown.

Label files of a groups run hold one column per group with a class index in [0, K-1] or -1; the
model has one softmax output per group. Accuracy and confusion matrices leave -1 rows out.
"""

import numpy as np

from multi_label.evaluation.inference import predict_dataset


def group_targets(dataset, group_names):
    """Maps a training dataset of (images, labels [batch, G]) to (images, {group: labels [batch]})."""
    names = list(group_names)
    return dataset.map(lambda images, labels: (images, {name: labels[:, i] for i, name in enumerate(names)}))


def predict_groups(model, dataset, group_names):
    """Returns ({group: logits [N, K]}, labels [N, G], paths [N]) over a dataset of (images, labels, paths)."""
    logits, labels, paths = predict_dataset(model, dataset)  # correct under a multi-replica strategy too
    return {name: logits[name] for name in group_names}, labels, paths


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
