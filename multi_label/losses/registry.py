"""Config names of the losses."""

from multi_label.losses.asl import AsymmetricLoss, SoftmaxAsymmetric
from multi_label.losses.bce import BinaryCrossEntropy, SoftmaxCrossEntropy
from multi_label.losses.epr import ExpectedPositiveRegularized
from multi_label.losses.focal import FocalLoss, SoftmaxFocal
from multi_label.losses.ghm import GHMCLoss, SoftmaxGHM
from multi_label.losses.hill import HillLoss
from multi_label.losses.llr import LargeLossRejection
from multi_label.losses.splc import SelfPacedLossCorrection

# Sigmoid losses for the multi-label head, labels [batch, classes] in {1, 0, -1}. The first four
# ignore -1 entries (or treat them per `unknown_labels`); the partial-label losses after them
# give -1 entries a term of their own and have no one-of-K version (configs.PartialLabelLoss).
LOSSES = {
    "bce": BinaryCrossEntropy,
    "focal": FocalLoss,
    "ghm": GHMCLoss,
    "asl": AsymmetricLoss,
    "hill": HillLoss,
    "splc": SelfPacedLossCorrection,
    "llr": LargeLossRejection,
    "epr": ExpectedPositiveRegularized,
}

# Softmax counterparts for one-of-K group heads, labels [batch] class indices
# (-1 unknown); the same config name picks the matching family. The partial-label losses have
# none (a config rule refuses them with head='groups').
GROUP_LOSSES = {
    "bce": SoftmaxCrossEntropy,
    "focal": SoftmaxFocal,
    "ghm": SoftmaxGHM,
    "asl": SoftmaxAsymmetric,
}
