"""Losses for the multi-label head and the one-of-K group heads.

Every loss ignores entries labelled -1, averages over the valid entries of
the batch, accepts `label_smoothing`, and saves/loads with a compiled model.
"""

from multi_label.losses.asl import AsymmetricLoss
from multi_label.losses.bce import BinaryCrossEntropy
from multi_label.losses.builder import LossSettings, build_group_losses, build_loss
from multi_label.losses.class_weights import CLASS_WEIGHTINGS, effective_number, effective_number_weights
from multi_label.losses.focal import FocalLoss
from multi_label.losses.ghm import GHMCLoss
from multi_label.losses.pos_weight import positive_weights_from_labels
from multi_label.losses.registry import GROUP_LOSSES, LOSSES
from multi_label.losses.softmax_asl import SoftmaxAsymmetric
from multi_label.losses.softmax_ce import SoftmaxCrossEntropy
from multi_label.losses.softmax_focal import SoftmaxFocal
from multi_label.losses.softmax_ghm import SoftmaxGHM

__all__ = [
    "LOSSES",
    "GROUP_LOSSES",
    "CLASS_WEIGHTINGS",
    "effective_number",
    "effective_number_weights",
    "AsymmetricLoss",
    "BinaryCrossEntropy",
    "FocalLoss",
    "GHMCLoss",
    "SoftmaxAsymmetric",
    "SoftmaxCrossEntropy",
    "SoftmaxFocal",
    "SoftmaxGHM",
    "LossSettings",
    "build_loss",
    "build_group_losses",
    "positive_weights_from_labels",
]
