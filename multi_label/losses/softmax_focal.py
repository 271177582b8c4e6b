"""Softmax focal loss for one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import GroupMaskedLoss, log_one_minus_softmax


@keras.saving.register_keras_serializable(package="multi_label")
class SoftmaxFocal(GroupMaskedLoss):
    """Multi-class focal loss from logits with integer labels and unknowns.

    loss = -sum_k t_k * (1 - p_k)^gamma * log(p_k) per sample with
    p = softmax(x) and t the smoothed one-hot target; for a hard target this
    is the paper's -(1 - p_y)^gamma * log(p_y) (Lin et al., ICCV 2017). The
    binary form's alpha is left out: one scalar alpha on a one-of-K target
    only rescales the loss. (1 - p_k) is taken in log space, so logits of
    magnitude 100 keep finite gradients. -1 labels are ignored. Reduction:
    sum over valid samples / max(number of valid samples, 1).

    Args:
        gamma: float. Focusing parameter >= 0; 0 gives cross-entropy.
        label_smoothing: float. In [0, 1); target mass spread uniformly over
            the K classes.
        name: str. Name of the loss.
    """

    def __init__(self, gamma=2.0, label_smoothing=0.0, name="softmax_focal"):
        super().__init__(label_smoothing=label_smoothing, name=name)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0. Received: gamma={gamma!r}")
        self.gamma = float(gamma)

    def sample_losses(self, targets, one_hot, logits, valid):
        modulating = ops.exp(self.gamma * log_one_minus_softmax(logits))
        return -ops.sum(targets * modulating * ops.log_softmax(logits, axis=-1), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["gamma"] = self.gamma
        return config
