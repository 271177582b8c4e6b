"""Per-class positive weights estimated from training labels."""

import numpy as np

# Lower bound 1: "auto" is meant to lift rare positives, not to shrink the
# positive term of classes that are mostly positive. Upper bound 100: a class
# with a handful of positives among thousands of negatives would otherwise get
# a weight in the thousands, so a single example would dominate the gradient
# and the loss scale (and the learning rate that suits it) would jump.
MIN_POSITIVE_WEIGHT = 1.0
MAX_POSITIVE_WEIGHT = 100.0


def positive_weights_from_labels(labels):
    """Per-class pos_weight = #valid negatives / #valid positives, clipped.

    Args:
        labels: np.ndarray. Shape [N, C] with values in {1, 0, -1}; -1
            (unknown) entries are not counted.

    Returns:
        list of float. C weights in [1, 100]; a class without any positive
        gets 1.0.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape [N, C]. Received: shape={labels.shape}")
    positives = np.sum(labels == 1, axis=0).astype("float64")
    negatives = np.sum(labels == 0, axis=0).astype("float64")
    ratio = np.divide(negatives, positives, out=np.ones_like(positives), where=positives > 0)
    return np.clip(ratio, MIN_POSITIVE_WEIGHT, MAX_POSITIVE_WEIGHT).tolist()
