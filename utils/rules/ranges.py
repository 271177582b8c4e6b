"""What each setting allows beyond its type: `LIMITS`, every range in one place.

utils/config.py checks each setting's type first, then its range here, before the rules between
settings; a value out of range stops the run with "<key>=<value> is out of range; expected <allowed>".
help=<setting> prints the allowed text too.
"""

import os
import re
import typing

from configs import ExportFormat
from utils.rules.names import BACKBONE_NAMES, HUB_PREFIX

GROUP_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # Keras layer and TF scope names: no spaces or slashes


def choices_text(literal):
    """'a non-empty list from a, b, c' for a Literal type of list entries."""
    return "a non-empty list from " + ", ".join(str(choice) for choice in typing.get_args(literal))


def _numbers(values, test):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and test(v) for v in values)


# Range checks that the type alone cannot express: key -> (test, what is allowed).
LIMITS = {
    "backbone": (lambda v: v in BACKBONE_NAMES or (v.startswith(HUB_PREFIX) and len(v) > len(HUB_PREFIX)),
                 f"one of {list(BACKBONE_NAMES)} or hub:<keras-hub preset name or folder>, e.g. 'hub:dinov2_small'"),
    "seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "lr": (lambda v: v > 0, "a number > 0"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "image_size": (lambda v: v >= 32, "an integer >= 32 (pixels; the backbones downsample 32 times)"),
    "demo_images": (lambda v: v >= 10, "an integer >= 10"),
    "shuffle_buffer": (lambda v: v >= 1, "an integer >= 1"),
    "cache_budget": (lambda v: 0 < v <= 1, "a number in (0, 1]: a share of the available memory"),
    "import_val_fraction": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "warmup_epochs": (lambda v: v >= 0, "a number >= 0"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "color_jitter": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "backbone_width": (lambda v: v > 0, "a number > 0"),
    "crop_scale": (lambda v: v is None or (len(v) == 2 and 0 < v[0] <= v[1] <= 1),
                   "None or (min, max) with 0 < min <= max <= 1"),
    "crop_ratio": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "(min, max) with 0 < min <= max"),
    "pos_weight": (lambda v: v is None or v == "auto" or (isinstance(v, (list, tuple))
                                                          and _numbers(v, lambda x: x > 0)),
                   'None, "auto", or a list of positive numbers (one per class)'),
    "label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "class_weight_beta": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "balanced_epochs": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "balanced_lr": (lambda v: v is None or v > 0, "None or a number > 0"),
    "demo_long_tail": (lambda v: v >= 1, "a number >= 1 (most to least frequent digit; 1.0: even)"),
    "focal_gamma": (lambda v: v >= 0, "a number >= 0"),
    "focal_alpha": (lambda v: v <= 1, "a number in [0, 1], or < 0 for no weighting"),
    "ghm_bins": (lambda v: v >= 1, "an integer >= 1"),
    "ghm_momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "asl_gamma_pos": (lambda v: v >= 0, "a number >= 0"),
    "asl_gamma_neg": (lambda v: v >= 0, "a number >= 0"),
    "asl_clip": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    # the partial-label losses
    "hill_lamb": (lambda v: v >= 1, "a number >= 1 (the weight lambda - p of its -1-label term stays >= 0)"),
    "hill_margin": (lambda v: v >= 0, "a number >= 0"),
    "hill_gamma": (lambda v: v >= 0, "a number >= 0"),
    "splc_tau": (lambda v: 0 < v < 1, "a probability in (0, 1)"),
    "splc_margin": (lambda v: v >= 0, "a number >= 0"),
    "splc_gamma": (lambda v: v >= 0, "a number >= 0"),
    "splc_start_epoch": (lambda v: v >= 0, "an integer >= 0 (0-based: 1 starts after the first epoch)"),
    "llr_rate_per_epoch": (lambda v: 0 <= v <= 1, "a number in [0, 1] (the paper's 0.1-0.5% are 0.001-0.005)"),
    "epr_expected_positives": (lambda v: v is None or v > 0, "None or a number > 0 (positives per image)"),
    # mode=find_label_errors
    "label_error_folds": (lambda v: v >= 2, "an integer >= 2 (each fold is predicted by a model trained on the rest)"),
    "label_error_epochs": (lambda v: v is None or v >= 1, "None (the run's epochs) or an integer >= 1"),
    "label_error_examples": (lambda v: v >= 0, "an integer >= 0 (0: no image grid)"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "epsilon": (lambda v: v > 0, "a number > 0"),
    "l2_kernels": (lambda v: v >= 0, "a number >= 0"),
    "l2_bn_gamma": (lambda v: v >= 0, "a number >= 0"),
    "clipnorm": (lambda v: v is None or v > 0, "None or a number > 0"),
    "warmup_steps": (lambda v: v >= 0, "an integer >= 0"),
    "min_lr": (lambda v: v >= 0, "a number >= 0"),
    "lr_steps": (lambda v: v is None or (len(v) > 0 and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0
                                                            for k in v) and _numbers(v.values(), lambda x: x > 0)),
                 "None or a non-empty {epoch: lr multiplier > 0}, e.g. {30: 0.1, 60: 0.01}"),
    "lr_decay_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "plateau_factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "plateau_patience": (lambda v: v >= 1, "an integer >= 1"),
    "early_stopping_patience": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "ema_decay": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "gradient_accumulation_steps": (lambda v: v >= 1, "an integer >= 1"),
    "base_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "run_name": (lambda v: bool(v) and os.sep not in v and v not in (".", ".."), "a non-empty folder name without '/'"),
    "output": (lambda v: v == "" or os.path.splitext(v)[1].lower() in (".csv", ".json"),
               '"" or a file name ending in .csv or .json'),
    "report_examples": (lambda v: v >= 0, "an integer >= 0"),
    "report_max_classes": (lambda v: v >= 1, "an integer >= 1"),
    "formats": (lambda v: len(v) > 0, choices_text(ExportFormat)),
    "parity_images": (lambda v: v >= 0, "an integer >= 0 (0: the whole test split)"),
    "calibration_images": (lambda v: v >= 1, "an integer >= 1"),
    "backbone_weights": (lambda v: v in ("", "none", "imagenet", "torchvision", "preset") or os.path.isfile(v),
                         '"none", "imagenet", "torchvision", "preset" or the path of an existing .keras, .weights.h5 '
                         'or *_notop.h5 file'),
    "groups": (lambda v: v is None or (len(v) > 0 and all(isinstance(k, str) and GROUP_NAME.fullmatch(k) for k in v)
                                       and all(isinstance(n, int) and not isinstance(n, bool) and n >= 2
                                               for n in v.values())),
               'None or {group name: number of classes >= 2}, e.g. {"colour": 12, "type": 6}; a group name is letters, '
               'digits, "_", "." and "-" (it names the group\'s output layer)'),
    "freeze_epochs": (lambda v: v >= 0, "an integer >= 0"),
    "backbone_lr_multiplier": (lambda v: v >= 0, "a number >= 0"),
    "csra_heads": (lambda v: v >= 1, "an integer >= 1"),
    "csra_temperatures": (lambda v: v is None or (len(v) > 0 and _numbers(v, lambda t: t > 0)),
                          "None or a list of numbers > 0 (99 = max pooling), one per csra head"),
    "csra_lambda": (lambda v: v >= 0, "a number >= 0"),
    "label_embeddings": (lambda v: v == "" or os.path.isfile(v),
                         '"" or the path of an existing GloVe-format text file'),
    "graph_hidden": (lambda v: v >= 1, "an integer >= 1"),
    "gcn_threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "gcn_reweight": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "ssgrl_steps": (lambda v: v >= 1, "an integer >= 1"),
    "decoder_layers": (lambda v: v is None or v >= 1, "None or an integer >= 1"),
    "decoder_width": (lambda v: v >= 2 and v % 2 == 0, "an even integer >= 2 (half the position code is rows, half "
                                                       "columns)"),
    "decoder_heads": (lambda v: v >= 1, "an integer >= 1"),
    "decoder_feedforward": (lambda v: v >= 1, "an integer >= 1"),
    "decoder_dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "ml_decoder_groups": (lambda v: v is None or v >= 1, "None or an integer >= 1"),
    "steps_per_execution": (lambda v: v >= 1, "an integer >= 1"),
    "save_every_steps": (lambda v: v >= 0, "an integer >= 0 (0: back up at epoch ends only)"),
    "hue_jitter": (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"),
    "rotation": (lambda v: 0 <= v <= 180, "a number of degrees in [0, 180]"),
    "gaussian_noise": (lambda v: v >= 0, "a number >= 0 (pixel units)"),
    "salt_and_pepper": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "cutout": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "cutout_count": (lambda v: v >= 1, "an integer >= 1"),
    "multiscale_crop": (lambda v: v is None or (len(v) > 0 and _numbers(v, lambda s: 0 < s <= 1)),
                        "None or a list of scales in (0, 1], e.g. (1.0, 0.875, 0.75, 0.66, 0.5)"),
    "mixup_alpha": (lambda v: v >= 0, "a number >= 0"),
    "cutmix_alpha": (lambda v: v >= 0, "a number >= 0"),
    "repeat_factor_threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "randaugment_ops": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "randaugment_magnitude": (lambda v: 0 <= v <= 10, "a number in [0, 10] (the paper's scale)"),
    "center_crop": (lambda v: 0 < v <= 1, "a number in (0, 1] (1.0: off)"),
    "slimming_l1": (lambda v: v >= 0, "a number >= 0 (0: off)"),
    "prune_ratio": (lambda v: 0 < v < 1, "a number in (0, 1): the share of the prunable channels to remove"),
    "pruned_channels": (lambda v: v == "" or os.path.isfile(v),
                        '"" or the path of an existing plan file (channels.json, written by mode=prune)'),
}
