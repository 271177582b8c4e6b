"""Gradient harmonizing classification loss, GHM-C (Li et al., AAAI 2019): sigmoid, and softmax for group heads."""

import keras
from keras import ops

from multi_label.losses._base import BinaryMaskedLoss, GroupMaskedLoss
from multi_label.losses._ghm_density import DensityWeighted, GradientDensity
from multi_label.losses.bce import binary_cross_entropy


@keras.saving.register_keras_serializable(package="multi_label")
class GHMCLoss(DensityWeighted, BinaryMaskedLoss):
    """GHM-C: BCE reweighted by the inverse density of gradient norms.

    Li, Liu and Wang, "Gradient Harmonized Single-stage Detector", AAAI 2019,
    as implemented in mmdetection's GHMC. Each valid entry has gradient norm
    g = |sigmoid(x) - t| (t the smoothed target, stop-gradient), binned into
    `bins` equal bins; its weight is N_valid / (density of its bin * number
    of non-empty bins), a constant, so crowded regions of g (the many easy
    entries near 0, a cluster of likely mislabelled ones near 1) are damped
    and the weights average to 1. Entries labelled -1 are ignored.
    Reduction: sum over valid entries of weight * BCE / max(number of valid
    entries, 1) over the whole batch (mmdetection's avg_factor).

    State: with momentum > 0 the bin density is a moving average kept in a
    non-trainable `keras.Variable` owned by the loss (see `GradientDensity`),
    which persists across steps of `model.fit` and compiled functions and
    also moves during `model.evaluate`, since the loss cannot tell the two
    apart (mmdetection behaves the same). A loss is not a layer, so
    `model.save` does not store that variable as a weight; instead
    `get_config` carries the current counts as `accumulated_counts`, which
    `keras.saving.load_model` passes back to `__init__`. A trainer that
    checkpoints weights only can add `loss.variables` to its checkpoint.

    Args:
        bins: int. Number of gradient-norm bins on [0, 1] (paper: 30).
        momentum: float. In [0, 1); moving-average momentum of the bin counts
            (paper: 0.75); 0 uses only the current batch.
        label_smoothing: float. In [0, 1); targets 1/0 become
            1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive
            BCE term.
        neg_weight: list of float or None. Per-class weight on the negative
            BCE term.
        accumulated_counts: list of float or None. Starting moving-average
            counts, length `bins`; None starts from zeros.
        unknown_labels: str. "ignore", "negative" or "weighted": what -1 entries do
            (`_base.UNKNOWN_LABELS`); the reduction above is that of "ignore".
        name: str. Name of the loss.
    """

    def __init__(
        self,
        bins=30,
        momentum=0.75,
        label_smoothing=0.0,
        pos_weight=None,
        neg_weight=None,
        accumulated_counts=None,
        unknown_labels="ignore",
        name="ghm",
    ):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight,
                         unknown_labels=unknown_labels, name=name)
        self.density = GradientDensity(bins, momentum, accumulated_counts, name=f"{name}_counts")

    def entry_losses(self, targets, logits, valid):
        weights = self.density.weights(ops.abs(ops.sigmoid(logits) - targets), valid)
        return weights * binary_cross_entropy(targets, logits, self.positive_weight(logits),
                                              self.negative_weight(logits))


@keras.saving.register_keras_serializable(package="multi_label")
class SoftmaxGHM(DensityWeighted, GroupMaskedLoss):
    """Softmax cross-entropy reweighted by gradient density, per sample.

    The gradient of cross-entropy with respect to the logits is p - t, so the
    per-sample gradient norm is g = 0.5 * sum_k |p_k - t_k| in [0, 1], which
    is 1 - p_y for a hard target. Samples are binned on g and weighted exactly
    as in `GHMCLoss` (Li et al., AAAI 2019): N_valid / (bin density * number
    of non-empty bins), constant, with the same moving-average state, saved
    through `get_config` as `accumulated_counts`. -1 labels are ignored.
    Reduction: sum over valid samples of weight * CE / max(number of valid
    samples, 1).

    Args:
        bins, momentum, accumulated_counts: as for `GHMCLoss`.
        label_smoothing: float. In [0, 1); target mass spread uniformly over
            the K classes.
        name: str. Name of the loss.
    """

    def __init__(self, bins=30, momentum=0.75, label_smoothing=0.0, accumulated_counts=None, name="softmax_ghm"):
        super().__init__(label_smoothing=label_smoothing, name=name)
        self.density = GradientDensity(bins, momentum, accumulated_counts, name=f"{name}_counts")

    def sample_losses(self, targets, one_hot, logits, valid):
        grad_norm = 0.5 * ops.sum(ops.abs(ops.softmax(logits, axis=-1) - targets), axis=-1)
        weights = self.density.weights(grad_norm, valid)
        return -weights * ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)
