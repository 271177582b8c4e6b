"""Rare-class sampling for multi-label data: repeat factors (soft) and class-balanced draws (hard).

Repeat-factor sampling (Gupta et al., "LVIS", 2019) repeats an image in an epoch according to
its rarest positive class:

    f_c = fraction of images (where c is known) that contain class c
    r_c = max(1, sqrt(t / f_c))
    r_i = max over the positive classes c of image i of r_c    (1 for an image with no positives)

A fractional factor is realised by stochastic rounding each epoch, as detectron2's
`RepeatFactorTrainingSampler` does, so the expected number of copies is exactly r_i.

Class-balanced sampling (the balanced stage; Kang et al., "Decoupling Representation and
Classifier for Long-Tailed Recognition", ICLR 2020, class-balanced sampling with q = 0) draws
each image of an epoch independently, with replacement, with probability

    p_i proportional to 1 / n_(c_i),    c_i = the rarest positive class of image i,

n_c the number of images that contain class c. For single-label data this is Kang et al.'s
sampler exactly: every class is drawn equally often, and an image uniformly within its class.
With several labels per image, each class gets at least its share of draws through the images
whose rarest class it is (and more through images where it is a frequent companion). Images
without any positive form one group of their own: they are drawn as often as one class, in
total.
"""

import numpy as np


def positive_class_frequency(labels):
    """Fraction of images containing each class, ignoring unknown (-1) entries.

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1.

    Returns:
        np.ndarray. float64 [C]; 0 for a class that is never known.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D array [images, classes]. Received shape {labels.shape}")
    positives = (labels == 1).sum(axis=0).astype(np.float64)
    known = (labels != -1).sum(axis=0).astype(np.float64)
    out = np.zeros_like(positives)
    np.divide(positives, known, out=out, where=known > 0)
    return out


def repeat_factors(labels, threshold):
    """Per-image repeat factor r_i (see the module docstring).

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1.
        threshold: float. t: classes present in fewer than this fraction of images get
            oversampled. LVIS uses 0.001; multi-label sets with a few dozen classes need larger
            values (0.01-0.1) for the sampler to do anything.

    Returns:
        np.ndarray. float64 [N], every entry >= 1.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0. Received threshold={threshold!r}")
    labels = np.asarray(labels)
    frequency = positive_class_frequency(labels)
    class_factor = np.ones_like(frequency)
    seen = frequency > 0  # a class with no positives never raises any image's factor
    class_factor[seen] = np.maximum(1.0, np.sqrt(threshold / frequency[seen]))
    # An image with no positive class keeps factor 1: where() puts 1 in every absent slot.
    per_label = np.where(labels == 1, class_factor[None, :], 1.0)
    return per_label.max(axis=1) if per_label.shape[1] else np.ones(len(labels))


def sample_epoch_indices(factors, rng, shuffle=True):
    """Image indices for one epoch: image i appears floor(r_i) or ceil(r_i) times.

    Stochastic rounding: the fractional part of r_i is the probability of one extra copy.

    Args:
        factors: array-like. float [N] repeat factors (from `repeat_factors`).
        rng: np.random.Generator or int. Random source, or a seed for one.
        shuffle: bool. Shuffle the indices (True) or keep them grouped by image (False).

    Returns:
        np.ndarray. int64 indices into the N images.
    """
    factors = np.asarray(factors, np.float64)
    if factors.ndim != 1 or np.any(factors < 0) or not np.all(np.isfinite(factors)):
        raise ValueError("factors must be a 1-D array of finite values >= 0")
    rng = np.random.default_rng(rng)
    whole = np.floor(factors)
    copies = whole.astype(np.int64) + (rng.random(len(factors)) < factors - whole)
    indices = np.repeat(np.arange(len(factors), dtype=np.int64), copies)
    if shuffle:
        rng.shuffle(indices)
    return indices


def rarest_positive_class(labels):
    """(class index, its positive count) per image: its positive class with the fewest positives in the set.

    An image with no positive gets class index -1 and, as its count, the number of such images.

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1, C >= 1; unknown entries are not counted.

    Returns:
        (np.ndarray, np.ndarray). int64 [N] and float64 [N].
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] == 0:
        raise ValueError(f"labels must be a 2-D array [images, classes >= 1]. Received shape {labels.shape}")
    positive = labels == 1
    per_label = np.where(positive, positive.sum(axis=0).astype(np.float64)[None, :], np.inf)
    rarest = np.argmin(per_label, axis=1)
    none = ~positive.any(axis=1)
    count = np.where(none, float(none.sum()), per_label[np.arange(len(labels)), rarest])
    return np.where(none, -1, rarest).astype(np.int64), count


def class_balanced_probabilities(labels):
    """Per-image draw probability of class-balanced sampling (see the module docstring): sums to 1.

    Args:
        labels: array-like. [N, C] of 1 / 0 / -1.

    Returns:
        np.ndarray. float64 [N].
    """
    _, count = rarest_positive_class(labels)
    if not len(count):
        raise ValueError("labels has no images to sample from")
    weights = 1.0 / count
    return weights / weights.sum()


def sample_balanced_indices(probabilities, size, rng):
    """`size` image indices drawn with replacement with `probabilities` (class-balanced sampling).

    Args:
        probabilities: array-like. float [N], from `class_balanced_probabilities`.
        size: int. Draws in the epoch.
        rng: np.random.Generator or int. Random source, or a seed for one.

    Returns:
        np.ndarray. int64 [size] indices into the N images.
    """
    probabilities = np.asarray(probabilities, np.float64)
    rng = np.random.default_rng(rng)
    return rng.choice(len(probabilities), size=int(size), replace=True, p=probabilities).astype(np.int64)
