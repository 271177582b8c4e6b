"""Config names of the losses."""

from multi_label.losses.asl import AsymmetricLoss
from multi_label.losses.bce import BinaryCrossEntropy
from multi_label.losses.focal import FocalLoss
from multi_label.losses.ghm import GHMCLoss
from multi_label.losses.softmax_asl import SoftmaxAsymmetric
from multi_label.losses.softmax_ce import SoftmaxCrossEntropy
from multi_label.losses.softmax_focal import SoftmaxFocal
from multi_label.losses.softmax_ghm import SoftmaxGHM

# Sigmoid losses for the multi-label head, labels [batch, classes] in {1, 0, -1}.
LOSSES = {
    "bce": BinaryCrossEntropy,
    "focal": FocalLoss,
    "ghm": GHMCLoss,
    "asl": AsymmetricLoss,
}

# Softmax counterparts for one-of-K group heads, labels [batch] class indices
# (-1 unknown); the same config name picks the matching family.
GROUP_LOSSES = {
    "bce": SoftmaxCrossEntropy,
    "focal": SoftmaxFocal,
    "ghm": SoftmaxGHM,
    "asl": SoftmaxAsymmetric,
}
