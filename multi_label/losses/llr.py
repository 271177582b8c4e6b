"""Large-loss rejection, LL-R, for unobserved labels (Kim et al., CVPR 2022)."""

import keras
from keras import ops

from multi_label.losses._base import BinaryLoss, masked_mean
from multi_label.losses.bce import binary_cross_entropy
from multi_label.losses.epoch_state import EpochDependent


@keras.saving.register_keras_serializable(package="multi_label")
class LargeLossRejection(EpochDependent, BinaryLoss):
    """LL-R: unknown labels are negatives, except the ones with the largest losses, which are dropped.

    Kim, Kim, Kim, Ahn and Kwak, "Large Loss Matters in Weakly Supervised Multi-Label
    Classification", CVPR 2022, following `compute_batch_loss` (mod_scheme 'LL-R') in
    github.com/snucml/LargeLossMatters, losses.py and train.py: every entry gets BCE with unknown
    (-1) entries as 0 (smoothed like the others). In epoch e (0-based) the rejection rate is
    min(e * rate_per_epoch, 1) (the authors' clean_rate starts at 1 and falls by delta_rel after
    each epoch, so the first epoch rejects nothing), and the k = ceil(batch * classes * rate)
    largest losses among the unknown entries of the batch get loss 0 (at most all of them; the
    authors take the k largest over the batch with known entries zeroed, here known entries are
    never rejected and exactly k are, ties broken by position). Under a `tf.distribute` strategy
    each replica ranks its own part of the batch. Reduction: sum over all entries / (batch *
    classes), rejected ones counted as 0 (the authors' mean).

    Args:
        rate_per_epoch: float. In [0, 1]; the paper's delta_rel (0.001-0.005, i.e. 0.1-0.5%).
        label_smoothing: float. In [0, 1); targets 1/0 (and unknown, as 0) become 1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive BCE term.
        neg_weight: list of float or None. Per-class weight on the negative BCE term.
        name: str. Name of the loss.
    """

    def __init__(self, rate_per_epoch=0.002, label_smoothing=0.0, pos_weight=None, neg_weight=None, name="llr"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight, name=name)
        if not 0.0 <= rate_per_epoch <= 1.0:
            raise ValueError(f"rate_per_epoch must be in [0, 1]. Received: rate_per_epoch={rate_per_epoch!r}")
        self.rate_per_epoch = float(rate_per_epoch)
        self.build_epoch(name)

    def rejection_rate(self):
        """Tensor. The share of batch * classes rejected in the current epoch."""
        return ops.minimum(self.epoch_variable * self.rate_per_epoch, 1.0)

    def call(self, y_true, y_pred):
        targets, known = self.known_targets(y_true)
        loss = binary_cross_entropy(targets, y_pred, self.positive_weight(y_pred), self.negative_weight(y_pred))
        rejected = largest_unknown(loss, ~known, self.rejection_rate())
        return masked_mean(ops.where(rejected, ops.zeros_like(loss), loss), ops.ones_like(known))

    def get_config(self):
        config = super().get_config()
        config["rate_per_epoch"] = self.rate_per_epoch
        return config


def largest_unknown(loss, unknown, rate):
    """Bool mask of the k = ceil(size * rate) largest `loss` values among the `unknown` entries.

    Ranked by sorting (XLA needs a static k for top_k; here k is a tensor). The 1e-6 keeps a
    product that is an integer up to float32 rounding (500 * 0.002) from rounding up past it.
    """
    flat = ops.reshape(ops.where(unknown, ops.stop_gradient(loss), -ops.ones_like(loss)), (-1,))
    size = ops.cast(ops.shape(flat)[0], loss.dtype)
    k = ops.ceil(size * rate * (1.0 - 1e-6))
    rank = ops.argsort(ops.argsort(-flat))  # 0 for the largest
    return unknown & ops.reshape(ops.cast(rank, loss.dtype) < k, ops.shape(loss))
