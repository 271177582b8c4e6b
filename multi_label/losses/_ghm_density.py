"""Gradient-density bookkeeping shared by the sigmoid and softmax GHM losses."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from multi_label.losses._base import sum_over_replicas


class GradientDensity:
    """Bins gradient norms and turns the bin counts into GHM weights.

    Follows mmdetection's GHMC: `bins` equal bins on [0, 1] whose last edge is
    nudged up by 1e-6 so that g = 1 falls inside; a valid entry in bin i gets
    weight N_valid / (density_i * number of non-empty bins), where density_i
    is this batch's count (momentum 0) or the moving average
    acc_i = momentum * acc_i + (1 - momentum) * count_i, updated only for
    bins that are non-empty in this batch.

    The moving average lives in a non-trainable `keras.Variable` of shape
    [bins] created here, eagerly, and updated with `.assign`, so it persists
    across calls of a compiled `tf.function` (a Python attribute would be
    frozen into the first trace). Under a `tf.distribute` strategy the counts
    and N_valid are summed over replicas before use, so every replica computes
    the same weights (those of the global batch) and writes the same state.
    The variable aggregates writes by "mean", which keeps those identical
    copies unchanged; "only_first_replica" would too, but it broadcasts
    through a merge_call, which MirroredStrategy does not allow when the step
    is XLA-compiled on GPUs (Keras's default there). Create the loss inside
    `strategy.scope()` so the variable is mirrored.

    Args:
        bins: int. Number of bins, >= 1.
        momentum: float. In [0, 1); 0 uses the current batch only.
        accumulated_counts: list of float or None. Initial moving-average
            counts (length `bins`), e.g. restored from a saved config.
        name: str. Name of the state variable.
    """

    def __init__(self, bins, momentum, accumulated_counts=None, name="ghm_accumulated_counts"):
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be an integer >= 1. Received: bins={bins!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1). Received: momentum={momentum!r}")
        self.bins = int(bins)
        self.momentum = float(momentum)
        if accumulated_counts is None:
            initial = np.zeros(self.bins, dtype="float32")
        else:
            initial = np.asarray(accumulated_counts, dtype="float32")
            if initial.shape != (self.bins,):
                raise ValueError(
                    f"accumulated_counts must have bins={self.bins} values. "
                    f"Received: accumulated_counts={accumulated_counts!r}"
                )
        edges = np.arange(self.bins + 1, dtype="float64") / self.bins
        edges[-1] += 1e-6
        self.lower_edges = edges[:-1].astype("float32")
        self.upper_edges = edges[1:].astype("float32")
        self.variable = keras.Variable(
            initial,
            trainable=False,
            dtype="float32",
            aggregation="mean",
            name=name,
        )

    @property
    def accumulated_counts(self):
        """np.ndarray [bins]. Current moving-average bin counts."""
        # .numpy() rather than np.array(): TF tensors' __array__ warns under NumPy 2.
        return tf.convert_to_tensor(self.variable).numpy()

    def weights(self, grad_norm, valid):
        """GHM weights for `grad_norm`, and a state update when momentum > 0.

        Args:
            grad_norm: tensor. Gradient norms in [0, 1], any shape.
            valid: bool tensor, same shape. Invalid entries get weight 0 and
                are not counted.

        Returns:
            Tensor of constant (stop-gradient) weights, same shape.
        """
        g = ops.stop_gradient(grad_norm)[..., None]
        in_bin = ops.cast(
            (g >= self.lower_edges) & (g < self.upper_edges) & valid[..., None], g.dtype
        )
        counts = ops.sum(ops.reshape(in_bin, (-1, self.bins)), axis=0)
        counts = sum_over_replicas(counts)
        num_valid = ops.sum(counts)
        non_empty = counts > 0
        if self.momentum > 0:
            density = ops.where(
                non_empty,
                self.momentum * self.variable + (1.0 - self.momentum) * counts,
                self.variable,
            )
            self.variable.assign(density)
        else:
            density = counts
        num_non_empty = ops.maximum(ops.sum(ops.cast(non_empty, g.dtype)), 1.0)
        safe_density = ops.where(non_empty, density, ops.ones_like(density))
        bin_weight = ops.where(non_empty, num_valid / safe_density / num_non_empty, 0.0)
        return ops.stop_gradient(ops.sum(in_bin * bin_weight, axis=-1))


class DensityWeighted:
    """Mixin of the GHM losses: the `GradientDensity` state (`self.density`) seen from the loss.

    Its `get_config` adds the state to the base loss's config, the current counts included, so
    `keras.saving.load_model` restores the moving average through `__init__`.
    """

    @property
    def bins(self):
        return self.density.bins

    @property
    def momentum(self):
        return self.density.momentum

    @property
    def accumulated_counts(self):
        """np.ndarray [bins]. Current moving-average bin counts."""
        return self.density.accumulated_counts

    @property
    def variables(self):
        """list of keras.Variable. The state to checkpoint alongside weights."""
        return [self.density.variable]

    def get_config(self):
        config = super().get_config()
        config.update(
            bins=self.bins,
            momentum=self.momentum,
            accumulated_counts=[float(c) for c in self.accumulated_counts],
        )
        return config
