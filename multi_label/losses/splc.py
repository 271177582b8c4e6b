"""Self-paced loss correction, SPLC, for missing labels (Zhang et al. 2021)."""

import keras
from keras import ops

from multi_label.losses._base import BinaryLoss, check_non_negative, masked_mean
from multi_label.losses._focal_margin import focal_negative, focal_positive
from multi_label.losses.epoch_state import EpochDependent


@keras.saving.register_keras_serializable(package="multi_label")
class SelfPacedLossCorrection(EpochDependent, BinaryLoss):
    """SPLC: unknown labels the model finds confidently positive are trained as positives.

    Zhang et al., "Simple and Robust Loss Design for Multi-Label Learning with Missing Labels",
    2021, following the authors' `SPLC` in github.com/xinyu1205/robust-loss-mlml,
    src/loss_functions/losses.py (focal-margin base loss). With p = sigmoid(x) and t the
    (smoothed) target:
    positives (1): -(1 - p_m)^gamma * log(p_m), p_m = sigmoid(x - margin);
    unknown entries (-1), the paper's unobserved labels: from epoch `start_epoch` on (0-based, the
    authors' change_epoch), those with p > tau count as positives, -(1 - p)^gamma * log(p) (no
    margin, as in the authors' code); the others, and all before that epoch, get the focal
    negative term -p^gamma * log(1 - p);
    confirmed negatives (0): the focal negative term, never corrected (a label that says
    "absent" is no missing positive).
    A known entry with a soft target t gets t * positive + (1 - t) * negative; pos_weight weights
    the positive terms (corrected ones too), neg_weight the negative ones. The epoch is a variable
    set by the training callbacks (`EpochDependent`). Reduction: sum over all entries /
    (batch * classes) (the authors' code sums).

    Args:
        tau: float. Probability threshold in (0, 1) above which an unknown label turns positive (paper: 0.6).
        margin: float. Margin >= 0 subtracted from positives' logits (paper: 1).
        gamma: float. Focusing exponent >= 0 (paper: 2).
        start_epoch: int. First epoch (0-based) of the correction (paper: 1, after one epoch).
        label_smoothing: float. In [0, 1); known targets 1/0 become 1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive terms.
        neg_weight: list of float or None. Per-class weight on the negative terms.
        name: str. Name of the loss.
    """

    def __init__(self, tau=0.6, margin=1.0, gamma=2.0, start_epoch=1, label_smoothing=0.0, pos_weight=None,
                 neg_weight=None, name="splc"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight, name=name)
        if not 0.0 < tau < 1.0:
            raise ValueError(f"tau must be in (0, 1). Received: tau={tau!r}")
        if int(start_epoch) != start_epoch or start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0. Received: start_epoch={start_epoch!r}")
        check_non_negative(margin=margin, gamma=gamma)
        self.tau = float(tau)
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.start_epoch = int(start_epoch)
        self.build_epoch(name)

    def call(self, y_true, y_pred):
        targets, known = self.known_targets(y_true)
        positive_weight, negative_weight = self.positive_weight(y_pred), self.negative_weight(y_pred)
        negative = negative_weight * focal_negative(y_pred, self.gamma)
        positive = positive_weight * focal_positive(y_pred, self.gamma, self.margin)
        known_loss = targets * positive + (1.0 - targets) * negative
        corrected = (self.epoch_variable >= self.start_epoch) & (ops.sigmoid(y_pred) > self.tau)
        unknown_loss = ops.where(corrected, positive_weight * focal_positive(y_pred, self.gamma), negative)
        return masked_mean(ops.where(known, known_loss, unknown_loss), ops.ones_like(known))

    def get_config(self):
        config = super().get_config()
        config.update(tau=self.tau, margin=self.margin, gamma=self.gamma, start_epoch=self.start_epoch)
        return config
