"""Per-class weights of the positive and negative terms of the sigmoid losses, from the training labels.

Each weighting maps the training labels [N, C] in {1, 0, -1} to (positive weights, negative
weights), one list of C numbers each or None for "all ones". Unknown (-1) entries are never
counted. `CLASS_WEIGHTINGS` is the registry of the `class_weighting` setting.

- "none": no weights.
- "inverse": the positive term of class c weighted by negatives_c / positives_c, clipped to
  [1, 100] (`positive_weights_from_labels`, what pos_weight="auto" gives); the negative term 1.
- "effective_number": Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
  CVPR 2019. A group of n samples has the effective number E_n = (1 - beta^n) / (1 - beta) and
  the weight 1 / E_n. The paper (and its code, richardaecn/class-balanced-loss) weights each
  sample by its class's 1 / E_n, normalised so that the weights sum to the number of classes.
  A sigmoid multi-label loss is C binary problems, each with a positive and a negative group,
  so here the 2C groups (class c present: n = positives_c; class c absent: n = negatives_c,
  known entries only) are the paper's classes: the positive term of class c gets
  1 / E(positives_c), its negative term 1 / E(negatives_c), normalised so that the 2C weights sum
  to 2C (their mean is 1). beta = 0 gives 1 everywhere (the plain loss); as beta -> 1 the weights
  approach 1 / n, whose positive/negative ratio negatives_c / positives_c is the "inverse" one,
  not clipped. A group with no sample (a class never present, or never absent) has no term to
  weight: it gets 1 and is left out of the normalisation. Other multi-label adaptations read the
  counts the same way (positives and negatives per class, e.g. imba-explain's ClassBalancedLoss)
  but normalise within each class, as a focal alpha; normalising over all 2C groups, as the
  paper does over its classes, keeps the rare classes' positives above the frequent ones'.
"""

import numpy as np

from multi_label.losses.pos_weight import positive_weights_from_labels


def label_counts(labels):
    """(positives, negatives) per class: float64 [C] each, unknown (-1) entries not counted.

    Args:
        labels: np.ndarray. [N, C] in {1, 0, -1}.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape [N, C]. Received: shape={labels.shape}")
    return (np.sum(labels == 1, axis=0).astype("float64"), np.sum(labels == 0, axis=0).astype("float64"))


def effective_number(counts, beta):
    """E_n = (1 - beta^n) / (1 - beta) for each count n (Cui et al., eq. 3); E_0 = 0, E_1 = 1.

    Args:
        counts: array-like. Sample counts n >= 0.
        beta: float. In [0, 1).
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1). Received: beta={beta!r}")
    counts = np.asarray(counts, np.float64)
    # -expm1(n log beta) is 1 - beta^n without the cancellation of 1 - 0.9999...^n for small n
    if beta == 0.0:
        return (counts > 0).astype(np.float64)
    return -np.expm1(counts * np.log(beta)) / (1.0 - beta)


def no_weights(labels, beta):
    """class_weighting="none": (None, None)."""
    return None, None


def inverse_weights(labels, beta):
    """class_weighting="inverse": (negatives / positives clipped to [1, 100], None); `beta` is not read."""
    return positive_weights_from_labels(labels), None


def effective_number_weights(labels, beta):
    """class_weighting="effective_number": (positive weights, negative weights), see the module docstring.

    Args:
        labels: np.ndarray. [N, C] in {1, 0, -1}.
        beta: float. In [0, 1); Cui et al. use 0.9, 0.99, 0.999 and 0.9999 (larger: closer to 1 / n).

    Returns:
        (list[float], list[float]). C positive-term and C negative-term weights.
    """
    positives, negatives = label_counts(labels)
    counts = np.concatenate([positives, negatives])
    weights = np.ones_like(counts)
    present = counts > 0
    if present.any():
        inverse = 1.0 / effective_number(counts[present], beta)
        weights[present] = inverse / inverse.sum() * present.sum()
    classes = len(positives)
    return weights[:classes].tolist(), weights[classes:].tolist()


# Config name (`class_weighting`) -> function(train labels [N, C], beta) -> (positive, negative) weights.
CLASS_WEIGHTINGS = {
    "none": no_weights,
    "inverse": inverse_weights,
    "effective_number": effective_number_weights,
}
