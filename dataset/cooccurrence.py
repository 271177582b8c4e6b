"""Label co-occurrence: how often classes appear together, the matrix the graph heads start from.

All functions take a label array [N, C] with values 1 (present), 0 (absent) and -1 (unknown);
-1 never counts as present, and conditional probabilities only use rows where both classes are
known.
"""

import numpy as np


def cooccurrence_counts(labels):
    """Counts images in which two classes are both present.

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1.

    Returns:
        Tuple `(counts, positives)`: `counts` int64 [C, C], `counts[i, j]` = images with i and j
        both present (the diagonal equals `positives`); `positives` int64 [C], images with the
        class present.
    """
    present = _as_labels(labels) == 1
    # float64 matmul runs on BLAS; integer matmul in numpy does not and is ~50x slower for
    # COCO-sized tables. Counts stay far below 2**53, so the float result is exact.
    as_float = present.astype(np.float64)
    counts = np.rint(as_float.T @ as_float).astype(np.int64)
    return counts, present.sum(axis=0).astype(np.int64)


def conditional_probability(labels):
    """P[i, j] = P(j present | i present), over rows where both i and j are known.

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1.

    Returns:
        np.ndarray. float64 [C, C]. A class with no positives (or whose partner is never known
        alongside it) gives zeros rather than NaN, so the matrix can feed a graph head directly.
        The diagonal is 1 for every class with positives.
    """
    labels = _as_labels(labels)
    present = (labels == 1).astype(np.float64)
    known = (labels != -1).astype(np.float64)
    both_present = present.T @ present  # [i, j]: i present and j present
    i_present_j_known = present.T @ known  # [i, j]: i present and j known
    out = np.zeros_like(both_present)
    np.divide(both_present, i_present_j_known, out=out, where=i_present_j_known > 0)
    return out


def _as_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D array [images, classes]. Received shape {labels.shape}")
    return labels
