"""Hill loss for missing labels (Zhang et al. 2021)."""

import keras
from keras import ops

from multi_label.losses._base import BinaryLoss, check_non_negative, masked_mean
from multi_label.losses._focal_margin import focal_negative, focal_positive


@keras.saving.register_keras_serializable(package="multi_label")
class HillLoss(BinaryLoss):
    """Hill: a hill-shaped, bounded negative term for labels that may be missing positives.

    Zhang et al., "Simple and Robust Loss Design for Multi-Label Learning with Missing Labels",
    2021, following the authors' `Hill` in github.com/xinyu1205/robust-loss-mlml,
    src/loss_functions/losses.py. With p = sigmoid(x), t the (smoothed) target and
    p_m = sigmoid(x - margin):
    positives (1): -(1 - p_m)^gamma * log(p_m), the focal-margin term;
    unknown entries (-1), the paper's unobserved labels that may be missing positives:
    (lamb - p) * p^2, which is small for a confident p, so a missing positive the model already
    finds is barely pushed down;
    confirmed negatives (0): -p^gamma * log(1 - p), the focal-margin loss's plain negative term
    (a label that says "absent" is no missing positive, so it gets no robust treatment).
    A known entry with a soft target t (smoothing, MixUp) gets t * positive + (1 - t) * negative;
    pos_weight and neg_weight multiply the positive and both negative terms. Reduction: sum over
    all entries / (batch * classes), every entry counted (the authors' code sums instead, so
    their learning rates suit a loss batch * classes times larger).

    Args:
        lamb: float. lambda >= 1 of the hill (lamb - p) p^2 (paper: 1.5, never changed).
        margin: float. Margin >= 0 subtracted from positives' logits (paper: 1; 0.5-1 works).
        gamma: float. Focusing exponent >= 0 of the positive and confirmed-negative terms (paper: 2).
        label_smoothing: float. In [0, 1); known targets 1/0 become 1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive term.
        neg_weight: list of float or None. Per-class weight on the negative terms.
        name: str. Name of the loss.
    """

    def __init__(self, lamb=1.5, margin=1.0, gamma=2.0, label_smoothing=0.0, pos_weight=None, neg_weight=None,
                 name="hill"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight, name=name)
        if lamb < 1:
            raise ValueError(f"lamb must be >= 1 (the weight lamb - p stays >= 0). Received: lamb={lamb!r}")
        check_non_negative(margin=margin, gamma=gamma)
        self.lamb = float(lamb)
        self.margin = float(margin)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        targets, known = self.known_targets(y_true)
        positive_weight, negative_weight = self.positive_weight(y_pred), self.negative_weight(y_pred)
        known_loss = (positive_weight * targets * focal_positive(y_pred, self.gamma, self.margin)
                      + negative_weight * (1.0 - targets) * focal_negative(y_pred, self.gamma))
        p = ops.sigmoid(y_pred)
        hill = negative_weight * (self.lamb - p) * ops.square(p)
        return masked_mean(ops.where(known, known_loss, hill), ops.ones_like(known))

    def get_config(self):
        config = super().get_config()
        config.update(lamb=self.lamb, margin=self.margin, gamma=self.gamma)
        return config
