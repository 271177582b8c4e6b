"""Expected-positive regularisation, EPR, for labels with few known positives (Cole et al., CVPR 2021)."""

import keras
import numpy as np
from keras import ops

from multi_label.losses._base import BinaryLoss, masked_mean, sum_over_replicas
from multi_label.losses.bce import binary_cross_entropy


@keras.saving.register_keras_serializable(package="multi_label")
class ExpectedPositiveRegularized(BinaryLoss):
    """EPR: BCE on the known labels plus a pull of the predicted positives per image towards k.

    Cole, Mac Aodha, Lorieul, Perona, Morris and Jojic, "Multi-Label Learning from Single
    Positive Labels", CVPR 2021, following `loss_epr`, `expected_positive_regularizer` (norm '2')
    and `compute_batch_loss` in github.com/elijahcole/single-positive-multi-label, losses.py.
    With p = sigmoid(x): positives -log p, confirmed negatives (0) -log(1 - p) (the reference has
    positives only; known negatives get plain BCE here), unknown (-1) entries no term of their
    own, and every entry's p enters the regulariser (mean over the batch of sum_c p_c - k)^2 / C^2.
    Known entries with soft targets get BCE(t, x). log p is softplus(-x), exact where the
    reference adds 1e-5 inside the log. Reduction: sum of the entries' terms / (batch * classes),
    unknown entries counted as 0 (the reference's), plus the regulariser. Under a
    `tf.distribute` strategy the batch mean of sum_c p is the global batch's, and each replica adds
    its share of the regulariser, so the replicas' losses sum to the single-device value.

    Args:
        expected_positives: float. k > 0, the expected number of positives per image (the
            reference uses each dataset's true average, e.g. 2.9 on COCO).
        label_smoothing: float. In [0, 1); known targets 1/0 become 1 - ls/2 and ls/2.
        pos_weight: list of float or None. Per-class weight on the positive term.
        neg_weight: list of float or None. Per-class weight on the negative term.
        name: str. Name of the loss.
    """

    def __init__(self, expected_positives=1.0, label_smoothing=0.0, pos_weight=None, neg_weight=None, name="epr"):
        super().__init__(label_smoothing=label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight, name=name)
        if not (np.isfinite(expected_positives) and expected_positives > 0):
            raise ValueError(f"expected_positives must be a number > 0. Received: "
                             f"expected_positives={expected_positives!r}")
        self.expected_positives = float(expected_positives)

    def call(self, y_true, y_pred):
        targets, known = self.known_targets(y_true)
        terms = binary_cross_entropy(targets, y_pred, self.positive_weight(y_pred), self.negative_weight(y_pred))
        data = masked_mean(ops.where(known, terms, ops.zeros_like(terms)), ops.ones_like(known))
        images = ops.cast(ops.shape(y_pred)[0], y_pred.dtype)
        all_images = ops.maximum(sum_over_replicas(images), 1.0)
        mean_positives = sum_over_replicas(ops.sum(ops.sigmoid(y_pred))) / all_images
        classes = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
        regulariser = ops.square(mean_positives - self.expected_positives) / ops.square(classes)
        return data + regulariser * images / all_images

    def get_config(self):
        config = super().get_config()
        config["expected_positives"] = self.expected_positives
        return config


def mean_positives_per_image(labels):
    """The mean number of known positives (1) per image of `labels` [N, C] in {1, 0, -1}.

    With positives missing (-1) this is below the true average, which EPR's k should be.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or len(labels) == 0:
        raise ValueError(f"labels must have shape [N, C] with N > 0. Received: shape={labels.shape}")
    mean = float(np.mean(np.sum(labels == 1, axis=1)))
    if mean == 0:
        raise ValueError("the training labels hold no positive (1) to measure the expected positives per image "
                         "from; set epr_expected_positives, e.g. 2.9 for COCO")
    return mean
