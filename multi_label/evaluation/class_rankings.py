"""Threshold-free multi-label metrics in NumPy: input checks, per-class rankings, AP, ROC AUC and mAP.

Targets are arrays [N, C] with 1 (present), 0 (absent) and -1 (unknown). An unknown entry takes
no part in any metric: it is removed from its class's ranking and from every count. Scores are
probabilities or logits [N, C]; only their order matters here.

Each class's scores are sorted once; classes are read a block at a time, so the working copies
stay near `BLOCK_ENTRIES` entries whatever the size of the data set.

Why not scikit-learn's `average_precision_score` and `roc_auc_score`: they have no unknown label,
so each class would need its own masked copy and its own sort, again for AUC and again for the
thresholds; here one sort per class serves AP, AUC, the 11-point AP and the fitted thresholds,
within a bounded memory (BENCHMARKS.md, "Metrics": 100,000 x 1,000 in 3.8 s of CPU). The tests
check every value against scikit-learn on the known entries (tests/test_metrics.py).
"""

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

UNKNOWN = -1
ELEVEN_RECALLS = np.arange(11) / 10  # k / 10 is exact, unlike np.arange(0, 1.1, 0.1)
BLOCK_ENTRIES = 1 << 22  # entries transposed at once: bounds the copies to about 50 MB


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
    block = max(1, BLOCK_ENTRIES // max(num_images, 1))
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


def ranking_metrics(targets, scores, eleven_point=False):
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
    return ranking_metrics(targets, scores, eleven_point)[0]


def roc_auc(targets, scores):
    """Per-class ROC AUC, equal to scikit-learn's `roc_auc_score` on each column's valid entries.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C].

    Returns:
        np.ndarray. Float [C], NaN for classes lacking a valid positive or a valid negative.
    """
    return ranking_metrics(targets, scores)[1]


def mean_defined(values):
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
    mean, undefined = mean_defined(ap)
    return MapResult(mean, ap, undefined)
