"""Single-label asymmetric loss for one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import GroupMaskedLoss, log_one_minus_softmax


@keras.saving.register_keras_serializable(package="multi_label")
class SoftmaxAsymmetric(GroupMaskedLoss):
    """The ASL authors' single-label form (their `ASLSingleLabel`).

    With p = softmax(x), y the one-hot label and t its smoothed version:
    w_k = (1 - p_k)^gamma_pos for the true class and p_k^gamma_neg for the
    others; loss = -sum_k t_k * w_k * log(p_k) per sample (Ridnik et al.,
    "Asymmetric Loss For Multi-Label Classification", ICCV 2021, code
    release). Without label smoothing the other classes carry no target
    mass, so gamma_neg only acts through smoothing, and the loss is softmax
    focal with gamma = gamma_pos. There is no probability shifting (clip) in
    this form. -1 labels are ignored. Reduction: sum over valid samples /
    max(number of valid samples, 1) (the authors' code also averages here).

    Args:
        gamma_pos: float. Focusing parameter >= 0 on the true class.
        gamma_neg: float. Focusing parameter >= 0 on the other classes.
        label_smoothing: float. In [0, 1); target mass spread uniformly over
            the K classes.
        name: str. Name of the loss.
    """

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, label_smoothing=0.0, name="softmax_asl"):
        super().__init__(label_smoothing=label_smoothing, name=name)
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError(
                "gamma_pos and gamma_neg must be >= 0. "
                f"Received: gamma_pos={gamma_pos!r}, gamma_neg={gamma_neg!r}"
            )
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)

    def sample_losses(self, targets, one_hot, logits, valid):
        log_p = ops.log_softmax(logits, axis=-1)
        weights = one_hot * ops.exp(self.gamma_pos * log_one_minus_softmax(logits)) + (
            1.0 - one_hot
        ) * ops.exp(self.gamma_neg * log_p)
        return -ops.sum(targets * weights * log_p, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg)
        return config
