"""Build the configured losses; the one place where setting names meet code."""

import dataclasses
from typing import Optional

import numpy as np

from multi_label.losses._base import BinaryMaskedLoss
from multi_label.losses.class_weights import CLASS_WEIGHTINGS
from multi_label.losses.epr import mean_positives_per_image
from multi_label.losses.pos_weight import positive_weights_from_labels
from multi_label.losses.registry import GROUP_LOSSES, LOSSES
from utils.defaults import DEFAULTS


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """The settings the losses read; names and defaults are those of configs.py.

    A family's own settings are named `<loss>_<constructor argument>` (`focal_gamma` is the
    `gamma` of the focal losses); `FAMILY_ARGUMENTS` passes each one on by name.
    """

    loss: str = DEFAULTS.loss
    label_smoothing: float = DEFAULTS.label_smoothing
    pos_weight: Optional[object] = DEFAULTS.pos_weight
    class_weighting: str = DEFAULTS.class_weighting
    class_weight_beta: float = DEFAULTS.class_weight_beta
    unknown_labels: str = DEFAULTS.unknown_labels
    focal_gamma: float = DEFAULTS.focal_gamma
    focal_alpha: float = DEFAULTS.focal_alpha
    ghm_bins: int = DEFAULTS.ghm_bins
    ghm_momentum: float = DEFAULTS.ghm_momentum
    asl_gamma_pos: float = DEFAULTS.asl_gamma_pos
    asl_gamma_neg: float = DEFAULTS.asl_gamma_neg
    asl_clip: float = DEFAULTS.asl_clip
    hill_lamb: float = DEFAULTS.hill_lamb
    hill_margin: float = DEFAULTS.hill_margin
    hill_gamma: float = DEFAULTS.hill_gamma
    splc_tau: float = DEFAULTS.splc_tau
    splc_margin: float = DEFAULTS.splc_margin
    splc_gamma: float = DEFAULTS.splc_gamma
    splc_start_epoch: int = DEFAULTS.splc_start_epoch
    llr_rate_per_epoch: float = DEFAULTS.llr_rate_per_epoch
    epr_expected_positives: Optional[float] = DEFAULTS.epr_expected_positives


def build_loss(settings, train_labels=None):
    """Build the multi-label head's loss.

    Reads `loss`, `label_smoothing`, `pos_weight`, `class_weighting`,
    `class_weight_beta`, `unknown_labels` (the losses that ignore -1 labels:
    bce, focal, ghm, asl) and the settings of the chosen loss only
    (`focal_gamma`, `focal_alpha`; `ghm_bins`, `ghm_momentum`;
    `asl_gamma_pos`, `asl_gamma_neg`, `asl_clip`; `hill_*`, `splc_*`,
    `llr_rate_per_epoch`, `epr_expected_positives`).

    Args:
        settings: LossSettings. The settings above.
        train_labels: np.ndarray or None. Training labels [N, C] in
            {1, 0, -1}; needed when `pos_weight == "auto"`,
            `class_weighting` is not "none", or loss="epr" measures its
            expected positives (`epr_expected_positives=None`).

    Returns:
        keras.losses.Loss. A new instance (GHM state at zero, epoch 0).
    """
    loss_class = LOSSES[settings.loss]
    pos_weight, neg_weight = class_term_weights(settings, train_labels)
    arguments = family_arguments(settings)
    if issubclass(loss_class, BinaryMaskedLoss):  # the others give -1 entries a term of their own
        arguments["unknown_labels"] = settings.unknown_labels
    if "expected_positives" in arguments and arguments["expected_positives"] is None:
        if train_labels is None:
            raise ValueError("epr_expected_positives=None measures k from train_labels [N, C]. Received: None")
        arguments["expected_positives"] = mean_positives_per_image(train_labels)
    return loss_class(label_smoothing=settings.label_smoothing, pos_weight=pos_weight, neg_weight=neg_weight,
                      **arguments)


def class_term_weights(settings, train_labels):
    """(positive, negative) per-class weights of the sigmoid losses: `pos_weight`, or `class_weighting`.

    The two are not set together (a config rule, so a set `pos_weight` is the answer);
    pos_weight="auto" is class_weighting="inverse".

    Args:
        settings: LossSettings. Reads `pos_weight`, `class_weighting` and `class_weight_beta`.
        train_labels: np.ndarray or None. Training labels [N, C] in {1, 0, -1}.
    """
    if settings.pos_weight is not None or settings.class_weighting == "none":
        return resolve_pos_weight(settings.pos_weight, train_labels), None
    if train_labels is None:
        raise ValueError(f"class_weighting={settings.class_weighting!r} needs train_labels [N, C]. Received: None")
    return CLASS_WEIGHTINGS[settings.class_weighting](np.asarray(train_labels), settings.class_weight_beta)


def build_group_losses(settings, group_sizes):
    """Build one softmax loss per one-of-K group head.

    Uses the family named by `loss` (see `GROUP_LOSSES`) with the same
    settings as `build_loss`, except that `pos_weight`, `focal_alpha` and
    `asl_clip` have no one-of-K counterpart and are not read. Each group gets
    its own instance, so GHM state is kept per group.

    Args:
        settings: LossSettings. Same settings as for `build_loss`.
        group_sizes: dict of str to int. Group name -> number of classes K
            (>= 2).

    Returns:
        dict of str to keras.losses.Loss, keyed like `group_sizes`.
    """
    for group, size in group_sizes.items():
        if size < 2:
            raise ValueError(
                f"A one-of-K group needs at least 2 classes. Received: {group}={size!r}"
            )
    if settings.loss not in GROUP_LOSSES:
        raise ValueError(f"loss={settings.loss!r} has no one-of-K version for a groups head; expected one of "
                         f"{sorted(GROUP_LOSSES)}")
    loss_class = GROUP_LOSSES[settings.loss]
    arguments = family_arguments(settings, one_of_k=True)
    return {
        group: loss_class(
            label_smoothing=settings.label_smoothing, name=f"{group}_{settings.loss}", **arguments
        )
        for group in group_sizes
    }


def family_arguments(settings, one_of_k=False):
    """The chosen family's own settings, by constructor argument.

    Args:
        settings: LossSettings. Reads `loss` and that family's settings.
        one_of_k: bool. For the softmax form of a group head, which has no `alpha` (focal) and
            no `clip` (ASL): both act on the negatives of a sigmoid.
    """
    arguments = FAMILY_ARGUMENTS[settings.loss](settings)
    return {name: value for name, value in arguments.items() if not (one_of_k and name in ("alpha", "clip"))}


# loss -> the constructor arguments its own settings give (the shared ones are passed by the builders).
FAMILY_ARGUMENTS = {
    "bce": lambda settings: {},
    "focal": lambda settings: {"gamma": settings.focal_gamma, "alpha": settings.focal_alpha},
    "ghm": lambda settings: {"bins": settings.ghm_bins, "momentum": settings.ghm_momentum},
    "asl": lambda settings: {"gamma_pos": settings.asl_gamma_pos, "gamma_neg": settings.asl_gamma_neg,
                             "clip": settings.asl_clip},
    "hill": lambda settings: {"lamb": settings.hill_lamb, "margin": settings.hill_margin,
                              "gamma": settings.hill_gamma},
    "splc": lambda settings: {"tau": settings.splc_tau, "margin": settings.splc_margin,
                              "gamma": settings.splc_gamma, "start_epoch": settings.splc_start_epoch},
    "llr": lambda settings: {"rate_per_epoch": settings.llr_rate_per_epoch},
    "epr": lambda settings: {"expected_positives": settings.epr_expected_positives},
}


def resolve_pos_weight(pos_weight, train_labels):
    """Turn the pos_weight setting (None, list or "auto") into None or a list."""
    if isinstance(pos_weight, str) and pos_weight == "auto":
        if train_labels is None:
            raise ValueError("pos_weight='auto' needs train_labels [N, C]. Received: None")
        return positive_weights_from_labels(np.asarray(train_labels))
    return pos_weight
