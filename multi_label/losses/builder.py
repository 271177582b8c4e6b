"""Build the configured losses; the one place where config strings meet code."""

import numpy as np

from multi_label.losses.pos_weight import positive_weights_from_labels
from multi_label.losses.registry import GROUP_LOSSES, LOSSES


def build_loss(config, train_labels=None):
    """Build the multi-label head's loss from a config object.

    Reads `config.loss`, `config.label_smoothing`, `config.pos_weight` and the
    settings of the chosen loss only (`focal_gamma`, `focal_alpha`;
    `ghm_bins`, `ghm_momentum`; `asl_gamma_pos`, `asl_gamma_neg`, `asl_clip`).

    Args:
        config: object. Has the attributes above.
        train_labels: np.ndarray or None. Training labels [N, C] in
            {1, 0, -1}; needed only when `config.pos_weight == "auto"`.

    Returns:
        keras.losses.Loss. A new instance (GHM state starts at zero).
    """
    check_loss_name(config.loss)
    settings = dict(
        label_smoothing=config.label_smoothing,
        pos_weight=resolve_pos_weight(config.pos_weight, train_labels),
    )
    settings.update(loss_specific_settings(config, include_alpha=True, include_clip=True))
    return LOSSES[config.loss](**settings)


def build_group_losses(config, group_sizes):
    """Build one softmax loss per one-of-K group head.

    Uses the family named by `config.loss` (see `GROUP_LOSSES`) with the same
    settings as `build_loss`, except that `pos_weight`, `focal_alpha` and
    `asl_clip` have no one-of-K counterpart and are not read. Each group gets
    its own instance, so GHM state is kept per group.

    Args:
        config: object. Same attributes as for `build_loss`.
        group_sizes: dict of str to int. Group name -> number of classes K
            (>= 2).

    Returns:
        dict of str to keras.losses.Loss, keyed like `group_sizes`.
    """
    check_loss_name(config.loss)
    for group, size in group_sizes.items():
        if size < 2:
            raise ValueError(
                f"A one-of-K group needs at least 2 classes. Received: {group}={size!r}"
            )
    settings = loss_specific_settings(config, include_alpha=False, include_clip=False)
    return {
        group: GROUP_LOSSES[config.loss](
            label_smoothing=config.label_smoothing, name=f"{group}_{config.loss}", **settings
        )
        for group in group_sizes
    }


def check_loss_name(name):
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}. Received: loss={name!r}")


def loss_specific_settings(config, include_alpha, include_clip):
    """Keyword arguments of the chosen loss family, read from `config`."""
    if config.loss == "focal":
        settings = dict(gamma=config.focal_gamma)
        if include_alpha:
            settings["alpha"] = config.focal_alpha
        return settings
    if config.loss == "ghm":
        return dict(bins=config.ghm_bins, momentum=config.ghm_momentum)
    if config.loss == "asl":
        settings = dict(gamma_pos=config.asl_gamma_pos, gamma_neg=config.asl_gamma_neg)
        if include_clip:
            settings["clip"] = config.asl_clip
        return settings
    return {}


def resolve_pos_weight(pos_weight, train_labels):
    """Turn the config's pos_weight (None, list or "auto") into None or a list."""
    if isinstance(pos_weight, str):
        if pos_weight != "auto":
            raise ValueError(
                "pos_weight must be None, a list of floats or 'auto'. "
                f"Received: pos_weight={pos_weight!r}"
            )
        if train_labels is None:
            raise ValueError("pos_weight='auto' needs train_labels [N, C]. Received: None")
        return positive_weights_from_labels(np.asarray(train_labels))
    return pos_weight
