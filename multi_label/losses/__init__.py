"""Losses for the multi-label head and the one-of-K group heads.

bce, focal, ghm and asl ignore entries labelled -1 (or treat them per
`unknown_labels`), the partial-label losses hill, splc, llr and epr give them a
term of their own; every loss accepts `label_smoothing` and saves/loads with a
compiled model.
"""

from multi_label.losses._base import UNKNOWN_LABELS
from multi_label.losses.asl import AsymmetricLoss, SoftmaxAsymmetric
from multi_label.losses.bce import BinaryCrossEntropy, SoftmaxCrossEntropy
from multi_label.losses.builder import LossSettings, build_group_losses, build_loss
from multi_label.losses.class_weights import CLASS_WEIGHTINGS, effective_number, effective_number_weights
from multi_label.losses.epoch_state import EpochDependent, epoch_dependent_losses
from multi_label.losses.epr import ExpectedPositiveRegularized
from multi_label.losses.focal import FocalLoss, SoftmaxFocal
from multi_label.losses.ghm import GHMCLoss, SoftmaxGHM
from multi_label.losses.hill import HillLoss
from multi_label.losses.llr import LargeLossRejection
from multi_label.losses.pos_weight import positive_weights_from_labels
from multi_label.losses.registry import GROUP_LOSSES, LOSSES
from multi_label.losses.splc import SelfPacedLossCorrection

__all__ = [
    "LOSSES",
    "GROUP_LOSSES",
    "CLASS_WEIGHTINGS",
    "UNKNOWN_LABELS",
    "effective_number",
    "effective_number_weights",
    "AsymmetricLoss",
    "BinaryCrossEntropy",
    "FocalLoss",
    "GHMCLoss",
    "HillLoss",
    "SelfPacedLossCorrection",
    "LargeLossRejection",
    "ExpectedPositiveRegularized",
    "EpochDependent",
    "epoch_dependent_losses",
    "SoftmaxAsymmetric",
    "SoftmaxCrossEntropy",
    "SoftmaxFocal",
    "SoftmaxGHM",
    "LossSettings",
    "build_loss",
    "build_group_losses",
    "positive_weights_from_labels",
]
