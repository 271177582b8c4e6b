"""Asymmetric loss, ASL (Ridnik et al., ICCV 2021): the sigmoid form, and the single-label form for group heads."""

import math

import keras
from keras import ops

from multi_label.losses._base import BinaryMaskedLoss, GroupMaskedLoss, log_one_minus_softmax


@keras.saving.register_keras_serializable(package="multi_label")
class AsymmetricLoss(BinaryMaskedLoss):
    """Asymmetric loss: separate focusing for positives and negatives, plus
    probability shifting that discards very easy negatives.

    Ridnik et al., "Asymmetric Loss For Multi-Label Classification",
    ICCV 2021. With p = sigmoid(x) and p_m = max(p - clip, 0):
    L+ = (1 - p)^gamma_pos * log(max(p, eps)),
    L- = p_m^gamma_neg * log(max(1 - p_m, eps)),
    loss = -(pos_weight * t * L+ + neg_weight * (1 - t) * L-) per entry, t the (smoothed)
    target. log(p) is taken as log_sigmoid(x) and 1 - p as sigmoid(-x), so
    |logit| = 100 gives finite values and gradients. With
    gamma_pos = gamma_neg = clip = 0 this is BCE (up to the eps clamp).
    Entries labelled -1 are ignored. Reduction: sum over valid entries /
    max(number of valid entries, 1) over the whole batch. The authors' code
    sums instead, so their learning rates are tuned for a loss about
    batch * classes times larger.

    Args:
        gamma_pos: float. Focusing parameter >= 0 for positives (paper: 0).
        gamma_neg: float. Focusing parameter >= 0 for negatives (paper: 4).
        clip: float. Probability margin in [0, 1) subtracted from negatives'
            p (paper: 0.05); 0 disables the shift.
        eps: float. Lower clamp > 0 inside the logs (paper code: 1e-8).
        label_smoothing: float. In [0, 1); targets 1/0 become
            1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive
            term.
        neg_weight: list of float or None. Per-class weight on the negative
            term.
        unknown_labels: str. "ignore", "negative" or "weighted": what -1 entries do
            (`_base.UNKNOWN_LABELS`); the reduction above is that of "ignore".
        name: str. Name of the loss.
    """

    def __init__(
        self,
        gamma_pos=0.0,
        gamma_neg=4.0,
        clip=0.05,
        eps=1e-8,
        label_smoothing=0.0,
        pos_weight=None,
        neg_weight=None,
        unknown_labels="ignore",
        name="asl",
    ):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight,
                         unknown_labels=unknown_labels, name=name)
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError(
                "gamma_pos and gamma_neg must be >= 0. "
                f"Received: gamma_pos={gamma_pos!r}, gamma_neg={gamma_neg!r}"
            )
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"clip must be in [0, 1). Received: clip={clip!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0. Received: eps={eps!r}")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)
        self.eps = float(eps)

    def entry_losses(self, targets, logits, valid):
        # (1 - p)^gamma_pos as exp(gamma_pos * log(1 - p)): no 0^0 when p
        # rounds to 1, whose pow gradient is 0 * inf = NaN.
        positive_focus = ops.exp(self.gamma_pos * ops.log_sigmoid(-logits))
        positive = positive_focus * ops.maximum(ops.log_sigmoid(logits), math.log(self.eps))
        # 1 - p_m = min(1 - p + clip, 1), with 1 - p = sigmoid(-x) to avoid
        # the cancellation in 1 - sigmoid(x).
        shifted_complement = ops.minimum(ops.sigmoid(-logits) + self.clip, 1.0)
        log_shifted = ops.log(ops.maximum(shifted_complement, self.eps))
        shifted = ops.relu(ops.sigmoid(logits) - self.clip)
        negative = self._power(shifted, self.gamma_neg) * log_shifted
        return -(self.positive_weight(logits) * targets * positive
                 + self.negative_weight(logits) * (1.0 - targets) * negative)

    @staticmethod
    def _power(base, exponent):
        """base ** exponent with 0 ** 0 = 1 and a zero (not NaN) gradient at 0."""
        positive = base > 0
        safe = ops.where(positive, base, ops.ones_like(base))
        at_zero = 0.0 if exponent > 0 else 1.0
        return ops.where(positive, ops.power(safe, exponent), at_zero)

    def get_config(self):
        config = super().get_config()
        config.update(
            gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg, clip=self.clip, eps=self.eps
        )
        return config


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
