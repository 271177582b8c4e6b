"""Exact multi-label evaluation metrics in NumPy.

Targets are arrays [N, C] with 1 (present), 0 (absent) and -1 (unknown). An unknown entry takes
no part in any metric: it is removed from its class's ranking and from every count. Scores are
probabilities or logits [N, C]; only their order matters for the ranking metrics.

Ranking metrics (AP, ROC AUC) sort each class's scores once; classes are read a block at a time,
so the working copies stay near `_BLOCK_ENTRIES` entries whatever the size of the data set.
"""

import math
from typing import Iterator, NamedTuple

import numpy as np

UNKNOWN = -1
ELEVEN_RECALLS = np.arange(11) / 10  # k / 10 is exact, unlike np.arange(0, 1.1, 0.1)
_BLOCK_ENTRIES = 1 << 22  # entries transposed at once: bounds the copies to about 50 MB


class MapResult(NamedTuple):
    """Mean average precision and the per-class values it averages.

    Args:
        map: float. Mean AP over classes with at least one valid positive; 0.0 if there is none.
        ap: np.ndarray. Float [C], AP per class, NaN where the class has no valid positive.
        undefined: list[int]. Indices of the classes with no valid positive.
    """

    map: float
    ap: np.ndarray
    undefined: list


class ClassRanking(NamedTuple):
    """Where each valid positive of one class ranks among the class's valid entries.

    Counts include the entries tied with the positive, so tied scores act as one threshold step,
    exactly as in scikit-learn's curves.

    Args:
        score: np.ndarray. Float [P], the positives' scores, highest first.
        tp: np.ndarray. Int [P], valid positives scoring at least `score`.
        fp: np.ndarray. Int [P], valid negatives scoring at least `score`.
        fp_tied: np.ndarray. Int [P], valid negatives scoring exactly `score`.
        next_score: np.ndarray. Float [P], the highest valid score below `score`; -inf if none.
        negatives: int. Number of valid negatives.
    """

    score: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fp_tied: np.ndarray
    next_score: np.ndarray
    negatives: int


def check_inputs(targets, scores):
    """Validates a targets/scores pair and returns them as int8 targets and float scores.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}.
        scores: array-like. Float [N, C], no NaN. Float32 stays float32 (no copy).

    Returns:
        A tuple (targets, scores) of np.ndarray.
    """
    labels = np.asarray(targets)
    values = np.asarray(scores)
    if labels.ndim != 2 or labels.shape != values.shape:
        raise ValueError(
            "targets and scores must be [N, C] arrays of the same shape. "
            f"Received: targets.shape={labels.shape}, scores.shape={values.shape}"
        )
    codes = labels.astype(np.int8, copy=False)
    converted = codes is not labels
    if codes.size and (codes.min() < -1 or codes.max() > 1 or (converted and not np.array_equal(codes, labels))):
        bad = np.unique(labels[(codes != labels) | (codes < -1) | (codes > 1)])[:5]
        raise ValueError(f"targets must hold only 1, 0 and -1. Received values such as {bad.tolist()}")
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if values.size and np.isnan(values.min()):  # min propagates NaN, without a mask the size of scores
        where = np.argwhere(np.isnan(values))[:3].tolist()
        raise ValueError(f"scores must not contain NaN. Received NaN at (image, class) {where}")
    return codes, values


def class_rankings(targets, scores) -> Iterator[ClassRanking]:
    """Yields the ClassRanking of each class in turn.

    Each class's positives and negatives are sorted apart (values-only sorts, about twice as
    fast as an argsort and its gathers), then the positives are located among both by binary
    search.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C], higher means more likely present.
    """
    targets, scores = check_inputs(targets, scores)
    num_images, num_classes = scores.shape
    block = max(1, _BLOCK_ENTRIES // max(num_images, 1))
    for start in range(0, num_classes, block):
        # One transposed copy per block of classes makes each class's entries contiguous.
        labels = np.ascontiguousarray(targets[:, start : start + block].T)
        keys = -np.ascontiguousarray(scores[:, start : start + block].T)  # ascending = best first
        for key, label in zip(keys, labels):
            yield _rank_positives(np.sort(key[label == 1]), np.sort(key[label == 0]))


def _rank_positives(positive_keys, negative_keys):
    """ClassRanking from the sorted keys (negated scores) of one class's positives and negatives."""
    tp = np.searchsorted(positive_keys, positive_keys, side="right")
    fp = np.searchsorted(negative_keys, positive_keys, side="right")
    fp_above = np.searchsorted(negative_keys, positive_keys, side="left")
    # The first key past a positive's tie group, among positives and among negatives.
    next_key = np.minimum(np.append(positive_keys, np.inf)[tp], np.append(negative_keys, np.inf)[fp])
    return ClassRanking(
        score=-positive_keys,
        tp=tp,
        fp=fp,
        fp_tied=fp - fp_above,
        next_score=-next_key,
        negatives=len(negative_keys),
    )


def _ranking_metrics(targets, scores, eleven_point=False):
    """Returns (ap, auc), each float [C] with NaN where undefined."""
    ap, auc = [], []
    for ranks in class_rankings(targets, scores):
        positives, negatives = len(ranks.score), ranks.negatives
        # Each positive adds 1 / P recall at the precision of its score's threshold step.
        precision = ranks.tp / (ranks.tp + ranks.fp)
        if not positives:
            ap.append(np.nan)
        elif eleven_point:
            recall = ranks.tp / positives
            ap.append(np.mean([precision[recall >= level].max(initial=0.0) for level in ELEVEN_RECALLS]))
        else:
            ap.append(precision.sum() / positives)
        # A positive beats the negatives below its score and ties with half of those at it.
        wins = np.sum(negatives - ranks.fp + 0.5 * ranks.fp_tied)
        auc.append(wins / (positives * negatives) if positives and negatives else np.nan)
    return np.array(ap, dtype=np.float64), np.array(auc, dtype=np.float64)


def average_precision(targets, scores, eleven_point=False):
    """Per-class average precision, equal to scikit-learn's `average_precision_score`.

    AP is the sum over score steps of (recall gain) x (precision at the step), with tied scores
    forming one step. The 11-point variant (PASCAL VOC 2007) averages, over recall levels
    0, 0.1, ..., 1, the highest precision at a recall of at least that level (0 if never
    reached); it uses the same tie-grouped steps, which for untied scores are the VOC devkit's.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C].
        eleven_point: bool. Use VOC2007 11-point interpolated AP instead.

    Returns:
        np.ndarray. Float [C], NaN for classes without a valid positive.
    """
    return _ranking_metrics(targets, scores, eleven_point)[0]


def roc_auc(targets, scores):
    """Per-class ROC AUC, equal to scikit-learn's `roc_auc_score` on each column's valid entries.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C].

    Returns:
        np.ndarray. Float [C], NaN for classes lacking a valid positive or a valid negative.
    """
    return _ranking_metrics(targets, scores)[1]


def _mean_defined(values):
    """Mean of the non-NaN values and the indices of the NaN ones (mean 0.0 if all are NaN)."""
    defined = ~np.isnan(values)
    mean = float(values[defined].mean()) if defined.any() else 0.0
    return mean, np.flatnonzero(~defined).tolist()


def mean_average_precision(targets, scores, eleven_point=False):
    """Mean of the per-class AP over classes with at least one valid positive.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C].
        eleven_point: bool. Average VOC2007 11-point AP instead.

    Returns:
        MapResult.
    """
    ap = average_precision(targets, scores, eleven_point)
    mean, undefined = _mean_defined(ap)
    return MapResult(mean, ap, undefined)


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
    rows_per_block = max(1, _BLOCK_ENTRIES // num_classes)
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
    ap, auc = _ranking_metrics(targets, scores)
    mean_ap, undefined = _mean_defined(ap)
    mean_auc, auc_undefined = _mean_defined(auc)
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
