"""GHM-C adapted to one-of-K group heads."""

import keras
from keras import ops

from multi_label.losses._base import GroupMaskedLoss
from multi_label.losses._ghm_density import DensityWeighted, GradientDensity


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
        bins: int. Number of gradient-norm bins on [0, 1].
        momentum: float. In [0, 1); moving-average momentum of the bin
            counts; 0 uses only the current batch.
        label_smoothing: float. In [0, 1); target mass spread uniformly over
            the K classes.
        accumulated_counts: list of float or None. Starting moving-average
            counts, length `bins`; None starts from zeros.
        name: str. Name of the loss.
    """

    def __init__(
        self,
        bins=30,
        momentum=0.75,
        label_smoothing=0.0,
        accumulated_counts=None,
        name="softmax_ghm",
    ):
        super().__init__(label_smoothing=label_smoothing, name=name)
        self.density = GradientDensity(bins, momentum, accumulated_counts, name=f"{name}_counts")

    def sample_losses(self, targets, one_hot, logits, valid):
        grad_norm = 0.5 * ops.sum(ops.abs(ops.softmax(logits, axis=-1) - targets), axis=-1)
        weights = self.density.weights(grad_norm, valid)
        return -weights * ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)
