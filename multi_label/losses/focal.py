"""Focal loss (Lin et al., ICCV 2017): the sigmoid form, and the softmax form for one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import BinaryMaskedLoss, GroupMaskedLoss, check_non_negative, log_one_minus_softmax
from multi_label.losses.bce import binary_cross_entropy


@keras.saving.register_keras_serializable(package="multi_label")
class FocalLoss(BinaryMaskedLoss):
    """Sigmoid focal loss for multi-label targets with unknowns.

    loss = -alpha_t * (1 - p_t)^gamma * log(p_t) per entry (Lin et al.,
    "Focal Loss for Dense Object Detection", ICCV 2017), with p = sigmoid(x),
    p_t = p * y + (1 - p) * (1 - y) and alpha_t = alpha * y + (1 - alpha) *
    (1 - y). With soft (smoothed) targets t the usual generalisation is used:
    alpha_t * (1 - p_t)^gamma * BCE(t, x), with p_t and alpha_t computed from
    t; for hard targets it is the paper's formula. pos_weight and neg_weight
    multiply the positive and negative terms of the BCE (on top of alpha_t). The modulating factor is computed as
    exp(gamma * log(1 - p_t)) in log-sigmoid form, so gamma = 0 and
    |logit| = 100 keep finite gradients. Entries labelled -1 are ignored.
    Reduction: sum over valid entries / max(number of valid entries, 1) over
    the whole batch (the paper instead normalises by the number of positives).

    Args:
        gamma: float. Focusing parameter >= 0; 0 gives (alpha-weighted) BCE.
        alpha: float. Weight of positives in [0, 1]; negatives get
            1 - alpha. Any value < 0 disables alpha weighting.
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

    def __init__(self, gamma=2.0, alpha=0.25, label_smoothing=0.0, pos_weight=None, neg_weight=None,
                 unknown_labels="ignore", name="focal"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight,
                         unknown_labels=unknown_labels, name=name)
        check_non_negative(gamma=gamma)
        if alpha > 1:
            raise ValueError(
                f"alpha must be in [0, 1], or < 0 to disable it. Received: alpha={alpha!r}"
            )
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def entry_losses(self, targets, logits, valid):
        loss = binary_cross_entropy(targets, logits, self.positive_weight(logits), self.negative_weight(logits))
        # 1 - p_t = t * (1 - p) + (1 - t) * p, summed in log space: log(0)
        # for a hard target drops its term exactly, and nothing rounds to 0.
        log_one_minus_pt = ops.logaddexp(
            ops.log(targets) + ops.log_sigmoid(-logits),
            ops.log(1.0 - targets) + ops.log_sigmoid(logits),
        )
        loss = loss * ops.exp(self.gamma * log_one_minus_pt)
        if self.alpha >= 0:
            loss = loss * (self.alpha * targets + (1.0 - self.alpha) * (1.0 - targets))
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(gamma=self.gamma, alpha=self.alpha)
        return config


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
