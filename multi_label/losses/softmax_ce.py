"""Softmax cross-entropy for one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import GroupMaskedLoss


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
