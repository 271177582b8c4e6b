"""Exact multi-label evaluation metrics in NumPy: predicted labels, label- and example-based scores, the summary.

Targets are arrays [N, C] with 1 (present), 0 (absent) and -1 (unknown). An unknown entry takes
no part in any metric: it is removed from every count. The threshold-free metrics (AP, ROC AUC,
mAP) are in `multi_label.evaluation.class_rankings` and are imported here too, so that evaluation code
finds every metric in this module.
"""

import math

import numpy as np

from multi_label.evaluation import class_rankings
from multi_label.evaluation.class_rankings import (  # noqa: F401  (imported for evaluation code: every metric in one module)
    UNKNOWN,
    MapResult,
    average_precision,
    check_inputs,
    mean_average_precision,
    mean_defined,
    ranking_metrics,
    roc_auc,
)


def binarize(scores, threshold=0.5, top_k=None):
    """Predicted labels: `scores >= threshold`, or the `top_k` highest scores of each image.

    With `top_k`, equal scores are taken in column order (the lower class index first), so each
    image gets exactly min(top_k, C) labels; `threshold` is then not used.

    Args:
        scores: array-like. Float [N, C].
        threshold: float or array-like. A threshold for all classes, or one per class [C].
        top_k: int or None. If set, predict the k highest scores of each image instead.

    Returns:
        np.ndarray. Bool [N, C].
    """
    scores = np.asarray(scores)
    num_images, num_classes = scores.shape
    if top_k is None:
        threshold = np.asarray(threshold, dtype=np.float64)
        if threshold.ndim > 1 or threshold.size not in (1, num_classes):
            raise ValueError(
                f"threshold must be a float or one value per class ({num_classes}). "
                f"Received: threshold.shape={threshold.shape}"
            )
        return scores >= threshold
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive int or None. Received: top_k={top_k!r}")
    if top_k >= num_classes:
        return np.ones(scores.shape, dtype=bool)
    predicted = np.empty(scores.shape, dtype=bool)
    rows_per_block = max(1, class_rankings.BLOCK_ENTRIES // num_classes)
    for start in range(0, num_images, rows_per_block):
        block = scores[start : start + rows_per_block]
        kth = np.partition(block, num_classes - top_k, axis=1)[:, num_classes - top_k, None]
        above = block > kth
        tied = block == kth
        chosen = above | tied
        room = top_k - np.count_nonzero(above, axis=1)
        # Only rows with more ties at the k-th score than places left need the column order.
        crowded = np.flatnonzero(np.count_nonzero(tied, axis=1) > room)
        first_ties = np.cumsum(tied[crowded], axis=1) <= room[crowded, None]
        chosen[crowded] = above[crowded] | (tied[crowded] & first_ties)
        predicted[start : start + rows_per_block] = chosen
    return predicted


def _label_counts(targets, predicted):
    """Per-class counts on valid entries: (true positives, predicted positives, positives)."""
    present = targets == 1
    valid = targets != UNKNOWN
    correct = np.count_nonzero(predicted & present, axis=0)
    claimed = np.count_nonzero(predicted & valid, axis=0)
    return correct, claimed, np.count_nonzero(present, axis=0)


def _ratio(numerator, denominator):
    return float(numerator / denominator) if denominator else 0.0


def _harmonic(a, b):
    return 2 * a * b / (a + b) if a + b else 0.0


def label_scores(targets, predicted):
    """Per-class and overall precision, recall and F1 of given predictions (see multilabel_scores).

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        predicted: array-like. Bool [N, C], e.g. from `binarize`.

    Returns:
        dict. Floats CP, CR, CF1, CF1_macro, OP, OR, OF1 and `undefined`, a list[int].
    """
    predicted = np.asarray(predicted, dtype=bool)
    correct, claimed, positives = _label_counts(np.asarray(targets), predicted)
    defined = positives > 0
    # A class that predicts nothing has precision 0, as ML-GCN's `Np[Np == 0] = 1` gives.
    precision = correct[defined] / np.maximum(claimed[defined], 1)
    recall = correct[defined] / positives[defined]
    f1 = 2 * correct[defined] / (claimed[defined] + positives[defined])
    cp = float(precision.mean()) if defined.any() else 0.0
    cr = float(recall.mean()) if defined.any() else 0.0
    op = _ratio(correct.sum(), claimed.sum())
    orecall = _ratio(correct.sum(), positives.sum())
    return {
        "CP": cp,
        "CR": cr,
        "CF1": _harmonic(cp, cr),
        "CF1_macro": float(f1.mean()) if defined.any() else 0.0,
        "OP": op,
        "OR": orecall,
        "OF1": _harmonic(op, orecall),
        "undefined": np.flatnonzero(~defined).tolist(),
    }


def multilabel_scores(targets, scores, threshold=0.5, top_k=None):
    """Per-class (C*) and overall (O*) precision, recall and F1, the ML-GCN set of metrics.

    Predictions are `scores >= threshold`, or the top_k scores of each image (see `binarize`;
    unlike ML-GCN's top-k, no threshold is applied on top). Only valid entries are counted, so a
    top-k label that lands on a -1 entry is simply not scored.

    Per-class means (CP, CR, CF1_macro) cover only classes with a valid positive; the others are
    listed in `undefined`. A class with no predicted positive has precision 0. CF1 is the
    harmonic mean of CP and CR (ML-GCN); CF1_macro is the mean of per-class F1 (scikit-learn's
    macro F1). Overall counts O* pool every class, undefined ones included: their false
    positives are still errors. A zero denominator gives 0.0, never NaN.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}.
        scores: array-like. Float [N, C].
        threshold: float or array-like. A threshold for all classes, or one per class [C].
        top_k: int or None. If set, predict the k highest scores of each image instead.

    Returns:
        dict. Floats CP, CR, CF1, CF1_macro, OP, OR, OF1 and `undefined`, a list[int].
    """
    targets, scores = check_inputs(targets, scores)
    return label_scores(targets, binarize(scores, threshold, top_k))


def hamming_loss(targets, predicted):
    """Fraction of valid entries predicted wrongly (0.0 if there is no valid entry).

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        predicted: array-like. Bool [N, C], e.g. from `binarize`.
    """
    targets = np.asarray(targets)
    valid = targets != UNKNOWN
    wrong = np.count_nonzero(valid & (np.asarray(predicted, dtype=bool) != (targets == 1)))
    return _ratio(wrong, np.count_nonzero(valid))


def subset_accuracy(targets, predicted):
    """Fraction of images whose valid entries are all predicted right.

    A -1 entry can neither match nor miss, so an image counts as exact when every known label
    is right. Images with no valid entry are left out; 0.0 if no image is left.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}.
        predicted: array-like. Bool [N, C], e.g. from `binarize`.
    """
    targets = np.asarray(targets)
    valid = targets != UNKNOWN
    wrong = valid & (np.asarray(predicted, dtype=bool) != (targets == 1))
    scored = valid.any(axis=1)
    return _ratio(np.count_nonzero(scored & ~wrong.any(axis=1)), np.count_nonzero(scored))


def example_f1(targets, predicted):
    """Mean over images of 2|Y & P| / (|Y| + |P|), counting valid entries only.

    An image with no valid positive and no predicted label among its valid entries scores 1.0
    (scikit-learn's `f1_score(average="samples", zero_division=1.0)`). Images with no valid
    entry are left out; 0.0 if no image is left.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}.
        predicted: array-like. Bool [N, C], e.g. from `binarize`.
    """
    targets = np.asarray(targets)
    present = targets == 1
    claimed = np.asarray(predicted, dtype=bool) & (targets != UNKNOWN)
    both = np.count_nonzero(present & claimed, axis=1)
    total = np.count_nonzero(present, axis=1) + np.count_nonzero(claimed, axis=1)
    f1 = np.where(total > 0, 2 * both / np.maximum(total, 1), 1.0)
    scored = (targets != UNKNOWN).any(axis=1)
    return float(f1[scored].mean()) if scored.any() else 0.0


def _prediction_summary(targets, predicted):
    """Label-based and example-based metrics of one set of predictions, without `undefined`."""
    scores = label_scores(targets, predicted)
    del scores["undefined"]  # the same classes as the summary's undefined AP
    scores["hamming_loss"] = hamming_loss(targets, predicted)
    scores["subset_accuracy"] = subset_accuracy(targets, predicted)
    scores["example_f1"] = example_f1(targets, predicted)
    return scores


def _by_name(class_names, values):
    return {name: None if math.isnan(v) else float(v) for name, v in zip(class_names, values)}


def evaluate_all(targets, scores, class_names, threshold=0.5, top_k=3):
    """Every metric of this module as a JSON-serialisable dict; undefined values are None.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C].
        class_names: list[str]. One name per class.
        threshold: float or array-like. Threshold of the `at_threshold` metrics, or one per class.
        top_k: int or None. k of the `at_top_k` metrics; None leaves them out.

    Returns:
        dict with `mAP`, `AP` by class name, `undefined_classes` (no valid positive, left out of
        mAP and of the per-class means), `mAUC`, `AUC` by class name, `auc_undefined_classes`
        (no valid positive or no valid negative), and under `at_threshold` and `at_top_k` the
        `multilabel_scores` plus `hamming_loss`, `subset_accuracy` and `example_f1`.
    """
    targets, scores = check_inputs(targets, scores)
    class_names = [str(name) for name in class_names]
    if len(class_names) != scores.shape[1]:
        raise ValueError(f"class_names must name the {scores.shape[1]} classes. Received {len(class_names)} names")
    ap, auc = ranking_metrics(targets, scores)
    mean_ap, undefined = mean_defined(ap)
    mean_auc, auc_undefined = mean_defined(auc)
    return {
        "mAP": mean_ap,
        "AP": _by_name(class_names, ap),
        "undefined_classes": [class_names[i] for i in undefined],
        "mAUC": None if len(auc_undefined) == len(class_names) else mean_auc,
        "AUC": _by_name(class_names, auc),
        "auc_undefined_classes": [class_names[i] for i in auc_undefined],
        "threshold": np.asarray(threshold, dtype=np.float64).tolist(),
        "at_threshold": _prediction_summary(targets, binarize(scores, threshold)),
        "top_k": top_k,
        "at_top_k": None if top_k is None else _prediction_summary(targets, binarize(scores, top_k=top_k)),
    }
