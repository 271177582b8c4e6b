"""Cross-entropy: masked binary cross-entropy on logits, and its softmax form for one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import BinaryMaskedLoss, GroupMaskedLoss


def binary_cross_entropy(targets, logits, pos_weight=1.0, neg_weight=1.0):
    """Per-entry BCE on logits, -(w+ * t * log p + w- * (1 - t) * log(1 - p)).

    Written with softplus (-log p = softplus(-x), -log(1 - p) = softplus(x)),
    which is finite with finite gradients for any finite logit, where
    log(sigmoid(x)) underflows to log(0) around |x| > 88 in float32.

    Args:
        targets: tensor. Targets in [0, 1].
        logits: tensor. Same shape as `targets`.
        pos_weight: float or tensor broadcastable to `targets`. Multiplies the
            positive term.
        neg_weight: float or tensor broadcastable to `targets`. Multiplies the
            negative term.

    Returns:
        Tensor of per-entry losses, same shape as `targets`.
    """
    return pos_weight * targets * ops.softplus(-logits) + neg_weight * (1.0 - targets) * ops.softplus(logits)


@keras.saving.register_keras_serializable(package="multi_label")
class BinaryCrossEntropy(BinaryMaskedLoss):
    """Sigmoid binary cross-entropy for multi-label targets with unknowns.

    loss = -(pos_weight * t * log(p) + neg_weight * (1 - t) * log(1 - p)) per entry, with
    p = sigmoid(logit) and t the (smoothed) target. Entries labelled -1 are
    ignored. Reduction: sum over valid entries / max(number of valid entries,
    1) over the whole batch (all classes pooled), not a per-sample mean.

    Args:
        label_smoothing: float. In [0, 1); targets 1/0 become
            1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive
            term; see `positive_weights_from_labels` for the "auto" choice.
        neg_weight: list of float or None. Per-class weight on the negative
            term (`class_weights.CLASS_WEIGHTINGS`).
        unknown_labels: str. "ignore", "negative" or "weighted": what -1 entries do
            (`_base.UNKNOWN_LABELS`); the reduction above is that of "ignore".
        name: str. Name of the loss.
    """

    def __init__(self, label_smoothing=0.0, pos_weight=None, neg_weight=None, unknown_labels="ignore", name="bce"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight,
                         unknown_labels=unknown_labels, name=name)

    def entry_losses(self, targets, logits, valid):
        return binary_cross_entropy(targets, logits, self.positive_weight(logits), self.negative_weight(logits))


@keras.saving.register_keras_serializable(package="multi_label")
class SoftmaxCrossEntropy(GroupMaskedLoss):
    """Categorical cross-entropy from logits with integer labels and unknowns.

    loss = -sum_k t_k * log_softmax(x)_k per sample, t the smoothed one-hot
    target. Labels have shape [batch] or [batch, 1]; -1 marks an unknown
    sample, which is ignored. Reduction: sum over valid samples / max(number
    of valid samples, 1).

    Args:
        label_smoothing: float. In [0, 1); target mass spread uniformly over
            the K classes (true class gets 1 - ls + ls/K).
        name: str. Name of the loss.
    """

    def __init__(self, label_smoothing=0.0, name="softmax_ce"):
        super().__init__(label_smoothing=label_smoothing, name=name)

    def sample_losses(self, targets, one_hot, logits, valid):
        return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)
