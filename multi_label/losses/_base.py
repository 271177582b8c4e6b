"""Shared masking, smoothing and reduction for every loss in this package."""

from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def masked_mean(values, valid):
    """Mean of `values` over the entries where `valid` is true.

    Under a `tf.distribute` strategy the denominator is the number of valid
    entries in the global batch, so the per-replica values the trainer sums
    add up to the exact global mean (and the loss needs no 1/replicas scaling).

    Args:
        values: tensor. Per-entry losses, finite everywhere.
        valid: bool tensor, same shape. False marks entries to ignore.

    Returns:
        Scalar tensor: sum of valid values / max(number of valid entries, 1).
    """
    total = ops.sum(ops.where(valid, values, ops.zeros_like(values)))
    count = sum_over_replicas(ops.sum(ops.cast(valid, values.dtype)))
    return total / ops.maximum(count, 1.0)


def sum_over_replicas(value):
    """Sum `value` across replicas when called inside a multi-replica step."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def check_label_smoothing(label_smoothing):
    """Return `label_smoothing` as a float, or raise if outside [0, 1)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            "label_smoothing must be in [0, 1). "
            f"Received: label_smoothing={label_smoothing!r}"
        )
    return float(label_smoothing)


class MaskedLoss(keras.losses.Loss):
    """Base class: a loss whose `call` already returns the reduced scalar.

    Args:
        label_smoothing: float. In [0, 1); how far targets move towards
            uniform.
        name: str or None. Name of the loss.
    """

    def __init__(self, label_smoothing=0.0, name=None):
        # `call` returns the final scalar; Keras passes a scalar through any
        # reduction unchanged, "sum" just avoids a second division.
        super().__init__(name=name, reduction="sum")
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras would multiply the already averaged scalar by the weights,
        # which silently changes the scale; unknown labels are marked with -1.
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} does not take sample_weight; mark "
                "entries to ignore with the label -1 instead. "
                f"Received: sample_weight={sample_weight!r}"
            )
        return super().__call__(y_true, y_pred)

    def get_config(self):
        return {"name": self.name, "label_smoothing": self.label_smoothing}


class BinaryLoss(MaskedLoss):
    """Base class for sigmoid multi-label losses with labels in {1, 0, -1} and per-class term weights.

    Subclasses implement `call(y_true, y_pred)` and decide themselves what an unknown (-1) entry
    contributes; `known_targets` gives them the smoothed targets and the mask of known entries.

    Args:
        label_smoothing: float. In [0, 1); targets become
            y * (1 - label_smoothing) + 0.5 * label_smoothing.
        pos_weight: list of float or None. One weight per class multiplying
            the positive term; None means 1 for every class.
        neg_weight: list of float or None. One weight per class multiplying
            the negative term (class_weighting="effective_number"); None means
            1 for every class.
        name: str or None. Name of the loss.
    """

    def __init__(self, label_smoothing=0.0, pos_weight=None, neg_weight=None, name=None):
        super().__init__(label_smoothing=label_smoothing, name=name)
        self.pos_weight = check_pos_weight(pos_weight)
        self.neg_weight = check_pos_weight(neg_weight, "neg_weight")

    def known_targets(self, y_true):
        """(targets, known): smoothed targets, unknown entries taken as 0 (and smoothed alike); the known mask."""
        known = y_true >= 0
        labels = ops.where(known, y_true, ops.zeros_like(y_true))
        return labels * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing, known

    def positive_weight(self, logits):
        """Per-class positive weights as a tensor broadcastable to `logits`."""
        return class_weight_tensor(self.pos_weight, logits, "pos_weight")

    def negative_weight(self, logits):
        """Per-class negative weights as a tensor broadcastable to `logits`."""
        return class_weight_tensor(self.neg_weight, logits, "neg_weight")

    def get_config(self):
        config = super().get_config()
        config["pos_weight"] = self.pos_weight
        config["neg_weight"] = self.neg_weight
        return config


class BinaryMaskedLoss(BinaryLoss):
    """Base class for the sigmoid losses that take the `unknown_labels` treatment of -1 entries.

    Subclasses implement `entry_losses(targets, logits, valid)`, which gets
    smoothed targets, logits where the ignored entries are already replaced
    by safe values, and the validity mask (for losses whose weights depend on
    the batch), and returns per-entry losses of the same shape.

    Args:
        label_smoothing, pos_weight, neg_weight: as for `BinaryLoss`.
        unknown_labels: str. A key of `UNKNOWN_LABELS`: "ignore" (a mean over
            the known entries), "negative" (every -1 is a 0) or "weighted"
            (Durand et al.'s partial-BCE normalisation, `partial_label_mean`).
        name: str or None. Name of the loss.
    """

    def __init__(self, label_smoothing=0.0, pos_weight=None, neg_weight=None, unknown_labels="ignore", name=None):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight, name=name)
        if unknown_labels not in UNKNOWN_LABELS:
            raise ValueError(f"unknown_labels must be one of {sorted(UNKNOWN_LABELS)}. "
                             f"Received: unknown_labels={unknown_labels!r}")
        self.unknown_labels = unknown_labels

    def call(self, y_true, y_pred):
        treatment = UNKNOWN_LABELS[self.unknown_labels]
        if treatment.as_negative:
            y_true = ops.maximum(y_true, 0.0)
        # Anything negative is "unknown". Replacing ignored logits by 0 before
        # any math keeps NaN/inf there out of both the value and the gradient
        # (a tf.where placed only after the math would still backpropagate
        # 0 * inf = NaN).
        targets, valid = self.known_targets(y_true)
        logits = ops.where(valid, y_pred, ops.zeros_like(y_pred))
        return treatment.reduce(self.entry_losses(targets, logits, valid), valid)

    def entry_losses(self, targets, logits, valid):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config["unknown_labels"] = self.unknown_labels
        return config


# Partial-BCE (Durand, Mehrasa and Mori, "Learning a Deep ConvNet for Multi-label Classification
# with Partial Labels", CVPR 2019): g(p) = alpha * p^gamma + beta with g(1) = 1 and g(0.1) = 5,
# gamma = 1, the paper's choice; public transcriptions use the rounded alpha = -4.45, beta = 5.45.
PARTIAL_BCE_GAMMA = 1.0
PARTIAL_BCE_AT_TENTH = 5.0
PARTIAL_BCE_ALPHA = (PARTIAL_BCE_AT_TENTH - 1.0) / (0.1**PARTIAL_BCE_GAMMA - 1.0)  # -40/9
PARTIAL_BCE_BETA = 1.0 - PARTIAL_BCE_ALPHA  # 49/9


def partial_label_mean(values, valid):
    """Durand et al.'s partial-BCE reduction: per image g(p) / C * its summed known losses, averaged over images.

    p is the image's share of known labels and g(p) = alpha * p^gamma + beta (the constants above),
    so a fully labelled batch gets the plain mean over all entries, and an image with few known
    labels weighs more than their share. Under a `tf.distribute` strategy the mean is over the
    images of the global batch, as `masked_mean`'s is over its entries.

    Args:
        values: tensor [batch, classes]. Per-entry losses, finite everywhere.
        valid: bool tensor, same shape. False marks the unknown entries.
    """
    classes = ops.cast(ops.shape(values)[-1], values.dtype)
    known = ops.cast(valid, values.dtype)
    share = ops.sum(known, axis=-1) / classes
    scale = PARTIAL_BCE_ALPHA * ops.power(share, PARTIAL_BCE_GAMMA) + PARTIAL_BCE_BETA
    per_image = scale / classes * ops.sum(ops.where(valid, values, ops.zeros_like(values)), axis=-1)
    images = sum_over_replicas(ops.cast(ops.shape(values)[0], values.dtype))
    return ops.sum(per_image) / ops.maximum(images, 1.0)


class UnknownLabels(NamedTuple):
    """One `unknown_labels` choice: whether -1 becomes 0 first, and the reduction(values, valid) to a scalar."""

    as_negative: bool
    reduce: Callable


# Config name (`unknown_labels`) -> what bce, focal, ghm and asl do with -1 entries.
UNKNOWN_LABELS = {
    "ignore": UnknownLabels(as_negative=False, reduce=masked_mean),
    "negative": UnknownLabels(as_negative=True, reduce=masked_mean),
    "weighted": UnknownLabels(as_negative=False, reduce=partial_label_mean),
}


def class_weight_tensor(weights, logits, name):
    """`weights` (one per class, or None for 1) as a tensor broadcastable to `logits`."""
    if weights is None:
        return ops.ones((), dtype=logits.dtype)
    num_classes = logits.shape[-1]
    if num_classes is not None and num_classes != len(weights):
        raise ValueError(
            f"{name} has {len(weights)} values but the logits "
            f"have {num_classes} classes. Received: {name}={weights!r}"
        )
    return ops.convert_to_tensor(np.asarray(weights), dtype=logits.dtype)


def check_pos_weight(pos_weight, name="pos_weight"):
    """Return `pos_weight` (or another per-class weight list, `name`) as a list of floats (or None), or raise."""
    if pos_weight is None:
        return None
    if isinstance(pos_weight, str) or np.ndim(pos_weight) != 1:
        raise ValueError(
            f"{name} must be None or a list of floats, one per class "
            "(resolve 'auto' with positive_weights_from_labels first). "
            f"Received: {name}={pos_weight!r}"
        )
    weights = [float(w) for w in pos_weight]
    if not all(np.isfinite(w) and w > 0 for w in weights):
        raise ValueError(
            f"{name} values must be finite and > 0. Received: {name}={pos_weight!r}"
        )
    return weights


class GroupMaskedLoss(MaskedLoss):
    """Base class for softmax (one-of-K) group losses with integer labels.

    Labels have shape [batch] or [batch, 1]; -1 (any negative) means unknown.
    Subclasses implement `sample_losses(targets, one_hot, logits, valid)`
    returning one loss per sample; `targets` are the smoothed one-hot targets
    one_hot * (1 - label_smoothing) + label_smoothing / K, and ignored rows
    of `logits` hold zeros.

    Args:
        label_smoothing: float. In [0, 1); share of the target mass spread
            uniformly over the K classes.
        name: str or None. Name of the loss.
    """

    def call(self, y_true, y_pred):
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            raise ValueError(
                "Group logits need a known last dimension (number of classes). "
                f"Received: logits shape={y_pred.shape}"
            )
        # Keras hands labels over as floats; small integers are exact.
        labels = ops.cast(ops.round(ops.reshape(y_true, (-1,))), "int32")
        valid = labels >= 0
        one_hot = ops.one_hot(ops.where(valid, labels, 0), num_classes, dtype=y_pred.dtype)
        logits = ops.where(valid[:, None], y_pred, ops.zeros_like(y_pred))
        targets = one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        return masked_mean(self.sample_losses(targets, one_hot, logits, valid), valid)

    def sample_losses(self, targets, one_hot, logits, valid):
        raise NotImplementedError


def log_one_minus_softmax(logits):
    """log(1 - softmax(logits)) per class, finite for any finite logits.

    log(1 - p_k) = logsumexp over j != k of x_j - logsumexp over all j; the
    direct log1p(-p_k) is -inf (and its gradient NaN) once p_k rounds to 1.
    """
    num_classes = logits.shape[-1]
    # A large finite negative instead of -inf keeps K = 1 finite too.
    exclude_self = ops.convert_to_tensor(np.eye(num_classes) * -1e9, dtype=logits.dtype)
    others = ops.logsumexp(logits[:, None, :] + exclude_self, axis=-1)
    return others - ops.logsumexp(logits, axis=-1, keepdims=True)


def check_non_negative(**values):
    """Raise if any of the named values is below 0, quoting it."""
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value!r}")
