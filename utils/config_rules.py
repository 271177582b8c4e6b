"""What each setting allows, and which settings go together; utils/config.py applies both at load time.

`LIMITS` holds the range of one setting that its type cannot express. `RULES` holds combinations
that cannot work, each checked once, before any data is read, and stopping the run with one line
that names the settings and what is expected. Builders do not check these again.

Which combinations are rules:
- a combination that would fail later (lr_schedule='step' without lr_steps fails when the
  schedule is built, after the data is read), or that a mode needs (mode=predict needs `input`);
- a combination that would give wrong results without an error (normalization='imagenet' with a
  keras.applications backbone, which normalises its [0, 255] input itself);
- a setting turned on (away from an "off" default: 0, None, "") for a part that never reads it,
  so it would be ignored silently (mixup_alpha with head='groups', label_embeddings with
  head='linear', decoder_layers or ml_decoder_groups with a head that has no decoder). Settings
  with a working default that belong to another choice (ghm_bins with loss='bce', pooling='max'
  with head='csra', decoder_width with head='linear') are left alone: the page holds them all.
- focal_alpha and asl_clip are on by default; with head='groups' they count only together with
  their loss (loss='focal', loss='asl'), whose one-of-K version has no such term. So the default
  config passes with head='groups', and a groups run with that loss turns the term off itself.
Settings of other modes are left alone (`input` with mode=train): one config file serves them all.
"""

import os
import re
import typing
from collections.abc import Callable
from typing import NamedTuple

from configs import ExportFormat, KerasApplication, LabelGraphHead, MixNet, PoolingHead, QueryHead, ResNet
from utils.label_quality_rules import LABEL_QUALITY_LIMITS, LABEL_QUALITY_RULES
from utils.partial_label_rules import PARTIAL_LABEL_LIMITS, PARTIAL_LABEL_RULES

# The csra_heads that the CSRA paper gives temperatures for (multi_label.heads.csra's
# PAPER_TEMPERATURES; tests/test_registries.py ties the two).
CSRA_PAPER_HEADS = (1, 2, 4, 6, 8)
APPLICATIONS = typing.get_args(KerasApplication)
BACKBONE_NAMES = typing.get_args(ResNet) + typing.get_args(MixNet) + APPLICATIONS
HUB_PREFIX = "hub:"  # backbone.hub.PRESET_PREFIX (utils may not import backbone)
# The backbones with torchvision ImageNet weights: backbone.torchvision_weights.TORCHVISION_WEIGHTS
# (tests/test_torchvision_weights.py ties the two; utils may not import backbone).
TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                         "resnext101_32x8d")
# The backbones network slimming prunes: multi_label.slimming.families.FAMILIES (tests/test_slimming.py
# ties the two; utils may not import multi_label).
PRUNABLE_BACKBONES = typing.get_args(ResNet) + typing.get_args(MixNet)
POOLING_HEADS = typing.get_args(PoolingHead)
LABEL_GRAPH_HEADS = typing.get_args(LabelGraphHead)
QUERY_HEADS = typing.get_args(QueryHead)
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
    **PARTIAL_LABEL_LIMITS, **LABEL_QUALITY_LIMITS,  # hill_*, splc_*, llr_*, epr_*; label_error_*
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "epsilon": (lambda v: v > 0, "a number > 0"),
    "weight_decay_conv": (lambda v: v >= 0, "a number >= 0"),
    "weight_decay_bn_gamma": (lambda v: v >= 0, "a number >= 0"),
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


class Rule(NamedTuple):
    """Settings that do not go together: `broken(config)` is True for a combination that cannot be used."""

    keys: tuple  # the settings the rule is about
    broken: Callable
    message: Callable  # config -> the one line for the user


def _either(words):
    """'a, b or c'."""
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _names(names):
    return _either(repr(name) for name in names)


def _groups(config):
    return config.head == "groups"


def _hub(config):
    return config.backbone.startswith(HUB_PREFIX)


def _keras_h5(path):
    return path.endswith((".h5", ".hdf5")) and not path.endswith(".weights.h5")


DATA_RULES = (
    Rule(("groups", "class_names"),
         lambda c: c.groups is not None and c.class_names is not None and list(c.groups) != list(c.class_names),
         lambda c: f"groups={c.groups!r} with class_names={c.class_names!r}: the groups are the label columns, in "
                   "order; expected the class_names as their names"),
    Rule(("tfrecord_dir", "data_format"), lambda c: bool(c.tfrecord_dir) and c.data_format != "tfrecord",
         lambda c: f"tfrecord_dir={c.tfrecord_dir!r} with data_format={c.data_format!r}: only data_format='tfrecord' "
                   "reads tfrecord_dir; set data_format='tfrecord', or tfrecord_dir=''"),
)

MODEL_RULES = (
    Rule(("head", "groups"), lambda c: _groups(c) != (c.groups is not None),
         lambda c: f"head={c.head!r} with groups={c.groups!r}: head='groups' and a groups dict "
                   "({group: number of classes}) go together"),
    Rule(("csra_heads", "csra_temperatures"),
         lambda c: c.csra_temperatures is not None and len(c.csra_temperatures) != c.csra_heads,
         lambda c: f"csra_temperatures={c.csra_temperatures!r} must list one temperature per head "
                   f"(csra_heads={c.csra_heads})"),
    Rule(("csra_heads", "csra_temperatures"),
         lambda c: c.csra_temperatures is None and c.csra_heads not in CSRA_PAPER_HEADS,
         lambda c: f"csra_heads={c.csra_heads!r} has no temperature set in the paper; use "
                   f"{_either(map(str, CSRA_PAPER_HEADS))}, "
                   "or list one temperature per head in csra_temperatures"),
    Rule(("csra_temperatures", "head"), lambda c: c.csra_temperatures is not None and c.head != "csra",
         lambda c: f"csra_temperatures={c.csra_temperatures!r} with head={c.head!r}: only head='csra' reads "
                   "csra_temperatures; set head='csra', or csra_temperatures=None"),
    Rule(("pooling", "head"), lambda c: c.pooling == "flatten" and c.head not in POOLING_HEADS,
         lambda c: f"pooling='flatten' with head={c.head!r}: only head {_names(POOLING_HEADS)} pools the feature "
                   "map; choose one of them, or leave pooling at its default"),
    Rule(("label_embeddings", "head"),
         lambda c: bool(c.label_embeddings) and c.head not in LABEL_GRAPH_HEADS,
         lambda c: f"label_embeddings={c.label_embeddings!r} with head={c.head!r}: only head "
                   f"{_names(LABEL_GRAPH_HEADS)} reads word vectors; choose one of them, or label_embeddings=''"),
    Rule(("decoder_width", "decoder_heads"), lambda c: c.decoder_width % c.decoder_heads != 0,
         lambda c: f"decoder_width={c.decoder_width} with decoder_heads={c.decoder_heads}: each attention head takes "
                   f"decoder_width / decoder_heads channels; expected a multiple of {c.decoder_heads}"),
    Rule(("decoder_layers", "head"), lambda c: c.decoder_layers is not None and c.head not in QUERY_HEADS,
         lambda c: f"decoder_layers={c.decoder_layers} with head={c.head!r}: only head {_names(QUERY_HEADS)} has "
                   "decoder layers; choose one of them, or decoder_layers=None"),
    Rule(("ml_decoder_groups", "head"), lambda c: c.ml_decoder_groups is not None and c.head != "ml_decoder",
         lambda c: f"ml_decoder_groups={c.ml_decoder_groups} with head={c.head!r}: only head='ml_decoder' reads "
                   "ml_decoder_groups; set head='ml_decoder', or ml_decoder_groups=None"),
    Rule(("normalization", "backbone"),
         lambda c: c.normalization != "backbone" and _hub(c),
         lambda c: f"normalization={c.normalization!r} with backbone={c.backbone!r}: a keras-hub preset brings its "
                   "own input normalisation; expected normalization='backbone'"),
    Rule(("backbone_weights", "backbone"),
         lambda c: (c.backbone_weights == "preset") != _hub(c) and c.backbone_weights in ("preset", "imagenet"),
         lambda c: f"backbone_weights={c.backbone_weights!r} with backbone={c.backbone!r}: 'preset' loads the weights "
                   "of a keras-hub preset (backbone='hub:<preset>') and only those; a preset's own weights are "
                   "backbone_weights='preset'"),
    Rule(("pooling", "backbone"), lambda c: c.pooling == "class_token" and not _hub(c),
         lambda c: f"pooling='class_token' with backbone={c.backbone!r}: only keras-hub ViT presets "
                   "(backbone='hub:<preset>') give a class token; choose avg, max, avg+max or flatten"),
    Rule(("normalization", "backbone"),
         lambda c: c.normalization != "backbone" and c.backbone in APPLICATIONS,
         lambda c: f"normalization={c.normalization!r} with backbone={c.backbone!r}: the keras.applications backbones "
                   "normalise their [0, 255] input themselves; expected normalization='backbone'"),
    Rule(("backbone_weights", "backbone"),
         lambda c: c.backbone_weights == "imagenet" and c.backbone not in APPLICATIONS,
         lambda c: f"backbone_weights='imagenet': Keras publishes no ImageNet weights for backbone={c.backbone!r}; "
                   f"use one of {sorted(APPLICATIONS)}, or a weights file path"),
    Rule(("backbone_weights", "backbone"),
         lambda c: _keras_h5(c.backbone_weights) and c.backbone not in APPLICATIONS,
         lambda c: f"backbone_weights={c.backbone_weights!r}: a Keras *_notop.h5 file loads into the "
                   f"keras.applications backbones {sorted(APPLICATIONS)} only, not "
                   f"backbone={c.backbone!r}"),
    Rule(("backbone_weights", "backbone"),
         lambda c: c.backbone_weights == "torchvision" and c.backbone not in TORCHVISION_BACKBONES,
         lambda c: f"backbone_weights='torchvision' with backbone={c.backbone!r}: torchvision's ImageNet weights are "
                   f"converted for {list(TORCHVISION_BACKBONES)} only; choose one of them, or other backbone_weights"),
    Rule(("backbone_weights", "backbone_width"),
         lambda c: c.backbone_weights == "torchvision" and c.backbone_width != 1.0,
         lambda c: f"backbone_width={c.backbone_width} with backbone_weights='torchvision': torchvision publishes the "
                   "width-1.0 networks only; expected backbone_width=1.0"),
)

# The one-of-K group heads: labels are class indices, the losses are softmax ones.
GROUPS_RULES = (
    Rule(("head", "mixup_alpha"), lambda c: _groups(c) and c.mixup_alpha > 0,
         lambda c: f"head='groups' with mixup_alpha={c.mixup_alpha}: MixUp mixes label vectors, but a group's "
                   "label is one class index; expected mixup_alpha=0"),
    Rule(("head", "cutmix_alpha"), lambda c: _groups(c) and c.cutmix_alpha > 0,
         lambda c: f"head='groups' with cutmix_alpha={c.cutmix_alpha}: CutMix mixes label vectors, but a group's "
                   "label is one class index; expected cutmix_alpha=0"),
    Rule(("head", "repeat_factor_threshold"), lambda c: _groups(c) and c.repeat_factor_threshold > 0,
         lambda c: f"head='groups' with repeat_factor_threshold={c.repeat_factor_threshold}: repeat-factor "
                   "sampling counts the positives of each class column, but a group's label is one class index; "
                   "expected repeat_factor_threshold=0"),
    Rule(("head", "class_weighting"), lambda c: _groups(c) and c.class_weighting != "none",
         lambda c: f"head='groups' with class_weighting={c.class_weighting!r}: the one-of-K losses have no positive "
                   "and negative term per class to weight; expected class_weighting='none'"),
    Rule(("head", "balanced_epochs"), lambda c: _groups(c) and c.balanced_epochs > 0,
         lambda c: f"head='groups' with balanced_epochs={c.balanced_epochs}: class-balanced sampling counts the "
                   "positives of each class column, not group indices; expected balanced_epochs=0"),
    Rule(("head", "pos_weight"), lambda c: _groups(c) and c.pos_weight is not None,
         lambda c: f"head='groups' with pos_weight={c.pos_weight!r}: the one-of-K losses have no positive weight "
                   "per class, so it would be ignored; expected pos_weight=None"),
    Rule(("head", "loss", "focal_alpha"), lambda c: _groups(c) and c.loss == "focal" and c.focal_alpha >= 0,
         lambda c: f"head='groups' with loss='focal' and focal_alpha={c.focal_alpha}: the one-of-K focal loss has "
                   "no class weighting, so focal_alpha would be ignored; set focal_alpha=-1 (off)"),
    Rule(("head", "loss", "asl_clip"), lambda c: _groups(c) and c.loss == "asl" and c.asl_clip > 0,
         lambda c: f"head='groups' with loss='asl' and asl_clip={c.asl_clip}: the one-of-K ASL has no probability "
                   "shift, so asl_clip would be ignored; set asl_clip=0"),
    Rule(("head", "temperature_scaling"), lambda c: _groups(c) and c.temperature_scaling,
         lambda c: "head='groups' with temperature_scaling=True: a temperature is fitted for sigmoid outputs "
                   "only, so it would be ignored; expected temperature_scaling=False"),
)

# warmup_steps cannot be compared with epochs before the data gives the steps per epoch, so the
# warmup rule compares warmup_epochs (when warmup_steps is 0) and the cosine schedule checks
# warmup_steps when it is built. min_lr is compared with lr before any batch-size scaling.
SCHEDULE_RULES = (
    Rule(("lr_schedule", "lr_steps"), lambda c: c.lr_schedule == "step" and c.lr_steps is None,
         lambda c: "lr_schedule='step' with lr_steps=None: the step schedule follows the lr_steps table; set "
                   "lr_steps={epoch: multiplier of lr}, e.g. {30: 0.1, 60: 0.01}"),
    Rule(("lr_steps", "lr_schedule"), lambda c: c.lr_steps is not None and c.lr_schedule != "step",
         lambda c: f"lr_steps={c.lr_steps!r} with lr_schedule={c.lr_schedule!r}: only lr_schedule='step' reads "
                   "lr_steps; set lr_schedule='step', or lr_steps=None"),
    Rule(("warmup_epochs", "epochs"), lambda c: c.warmup_steps == 0 and c.warmup_epochs >= c.epochs,
         lambda c: f"warmup_epochs={c.warmup_epochs} with epochs={c.epochs}: the warmup would last the whole "
                   "training; expected warmup_epochs < epochs"),
    Rule(("balanced_lr", "balanced_epochs"), lambda c: c.balanced_lr is not None and c.balanced_epochs == 0,
         lambda c: f"balanced_lr={c.balanced_lr} with balanced_epochs=0: only the balanced stage reads balanced_lr; "
                   "set balanced_epochs, or balanced_lr=None"),
    Rule(("pos_weight", "class_weighting"), lambda c: c.pos_weight is not None and c.class_weighting != "none",
         lambda c: f"pos_weight={c.pos_weight!r} with class_weighting={c.class_weighting!r}: both weight the "
                   "positive term (pos_weight='auto' is class_weighting='inverse'); set one of them"),
    Rule(("ema_decay", "balanced_epochs"), lambda c: c.ema_decay > 0 and c.balanced_epochs > 0,
         lambda c: f"ema_decay={c.ema_decay} with balanced_epochs={c.balanced_epochs}: the average would carry the "
                   "first stage's head into the stage's validation; set ema_decay=0, or balanced_epochs=0"),
    Rule(("early_stopping_patience", "balanced_epochs"), lambda c: c.early_stopping_patience > 0 < c.balanced_epochs,
         lambda c: f"early_stopping_patience={c.early_stopping_patience} with balanced_epochs={c.balanced_epochs}: an "
                   "early stop would end the run before the balanced stage; set one of them to 0"),
    Rule(("min_lr", "lr"), lambda c: c.min_lr > c.lr,
         lambda c: f"min_lr={c.min_lr} with lr={c.lr}: the lowest learning rate is above the peak; expected "
                   "min_lr <= lr"),
)

# What a mode needs. The messages of the checks that the modes made before are kept.
MODE_RULES = (
    Rule(("mode", "train_labels"), lambda c: c.mode == "train" and not c.train_labels,
         lambda c: "train_labels is empty; training needs a label file"),
    Rule(("mode", "lr_schedule", "val_labels"),
         lambda c: c.mode == "train" and c.lr_schedule == "plateau" and not c.val_labels,
         lambda c: "lr_schedule='plateau' with val_labels='': the plateau schedule cuts the learning rate when "
                   "the validation mAP stops improving; set val_labels, or another lr_schedule"),
    Rule(("mode", "early_stopping_patience", "val_labels"),
         lambda c: c.mode == "train" and c.early_stopping_patience > 0 and not c.val_labels,
         lambda c: f"early_stopping_patience={c.early_stopping_patience} with val_labels='': early stopping "
                   "watches the validation mAP; set val_labels, or early_stopping_patience=0"),
    Rule(("mode", "strategy"),
         lambda c: c.mode == "train" and c.strategy == "multi_worker" and "TF_CONFIG" not in os.environ,
         lambda c: "strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster and this "
                   "worker's task); see learning_notes/06-scaling.md"),
    Rule(("mode", "test_labels"), lambda c: c.mode == "test" and not c.test_labels,
         lambda c: "test_labels is empty; mode=test needs a label file"),
    Rule(("mode", "input"), lambda c: c.mode == "predict" and not c.input,
         lambda c: "input is empty; mode=predict needs input=<image | folder | label file>"),
    Rule(("mode", "train_labels"), lambda c: c.mode == "debug" and not c.train_labels,
         lambda c: "train_labels is empty; mode=debug needs a training batch"),
    Rule(("mode", "import_source"), lambda c: c.mode == "import" and not c.import_source,
         lambda c: "import_source is empty; name the annotation file or folder to import"),
    Rule(("mode", "import_output"), lambda c: c.mode == "import" and not c.import_output,
         lambda c: "import_output is empty; name the CSV file to write"),
    Rule(("mode", "formats", "train_labels"),
         lambda c: c.mode == "convert" and "tflite_int8" in c.formats and not c.train_labels,
         lambda c: "formats includes 'tflite_int8' with train_labels='': tflite_int8 is calibrated on training "
                   "images; set train_labels, or leave tflite_int8 out of formats"),
    Rule(("mode", "train_labels", "val_labels", "test_labels"),
         lambda c: c.mode in ("check", "stats") and not (c.train_labels or c.val_labels or c.test_labels),
         lambda c: f"mode={c.mode} with train_labels, val_labels and test_labels all empty: name at least one "
                   "label file"),
)

# Network slimming: the sparsity penalty, a pruned network and mode=prune need a backbone it prunes.
SLIMMING_RULES = tuple(
    Rule((key, "backbone"), lambda c, on=on: on(c) and c.backbone not in PRUNABLE_BACKBONES,
         lambda c, what=what: f"{what(c)} with backbone={c.backbone!r}: network slimming prunes the hand-written "
                              f"backbones {list(PRUNABLE_BACKBONES)} only; choose one of them")
    for key, on, what in (
        ("slimming_l1", lambda c: c.slimming_l1 > 0, lambda c: f"slimming_l1={c.slimming_l1}"),
        ("pruned_channels", lambda c: bool(c.pruned_channels), lambda c: f"pruned_channels={c.pruned_channels!r}"),
        ("mode", lambda c: c.mode == "prune", lambda c: "mode=prune"),
    ))

RULES = (DATA_RULES + MODEL_RULES + GROUPS_RULES + tuple(Rule(*rule) for rule in PARTIAL_LABEL_RULES) + SCHEDULE_RULES
         + MODE_RULES + tuple(Rule(*rule) for rule in LABEL_QUALITY_RULES) + SLIMMING_RULES)


def broken_rule(config):
    """The message of the first rule that `config` breaks, or None when every rule holds."""
    for rule in RULES:
        if rule.broken(config):
            return rule.message(config)
    return None
