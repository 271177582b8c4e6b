"""Head, loss, backbone, weights and schedule settings that cannot work together.

A combination is a rule when it would fail later (lr_schedule='step' without lr_steps fails when the
schedule is built, after the data is read) or give wrong results without an error
(normalization='imagenet' with a keras.applications backbone, which normalises its [0, 255] input
itself). Settings that would merely be ignored are in ignored.py.
"""

from utils.rules.names import (
    APPLICATIONS,
    CSRA_PAPER_HEADS,
    HUB_PREFIX,
    IMAGENET_BACKBONES,
    PARTIAL_LABEL_LOSSES,
    PRUNABLE_BACKBONES,
    TORCHVISION_BACKBONES,
)
from utils.rules.rule import Rule, either


def _groups(config):
    return config.head == "groups"


def _hub(config):
    return config.backbone.startswith(HUB_PREFIX)


def _keras_h5(path):
    return path.endswith((".h5", ".hdf5")) and not path.endswith(".weights.h5")


HEAD_RULES = (
    Rule(("groups", "class_names"),
         lambda c: c.groups is not None and c.class_names is not None and list(c.groups) != list(c.class_names),
         lambda c: f"groups={c.groups!r} with class_names={c.class_names!r}: the groups are the label columns, in "
                   "order; expected the class_names as their names"),
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
                   f"{either(map(str, CSRA_PAPER_HEADS))}, or list one temperature per head in csra_temperatures"),
    Rule(("decoder_width", "decoder_heads"), lambda c: c.decoder_width % c.decoder_heads != 0,
         lambda c: f"decoder_width={c.decoder_width} with decoder_heads={c.decoder_heads}: each attention head takes "
                   f"decoder_width / decoder_heads channels; expected a multiple of {c.decoder_heads}"),
    Rule(("head", "loss"), lambda c: _groups(c) and c.loss in PARTIAL_LABEL_LOSSES,
         lambda c: f"head='groups' with loss={c.loss!r}: the partial-label losses have no one-of-K version; choose "
                   "bce, focal, ghm or asl"),
)

BACKBONE_RULES = (
    Rule(("normalization", "backbone"), lambda c: c.normalization != "backbone" and _hub(c),
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
    Rule(("normalization", "backbone"), lambda c: c.normalization != "backbone" and c.backbone in APPLICATIONS,
         lambda c: f"normalization={c.normalization!r} with backbone={c.backbone!r}: the keras.applications backbones "
                   "normalise their [0, 255] input themselves; expected normalization='backbone'"),
    Rule(("backbone_weights", "backbone"),
         lambda c: c.backbone_weights == "imagenet" and c.backbone not in IMAGENET_BACKBONES,
         lambda c: f"backbone_weights='imagenet': there are no ImageNet weights for backbone={c.backbone!r}; "
                   f"use one of {sorted(IMAGENET_BACKBONES)}, or a weights file path"),
    Rule(("backbone_weights", "backbone"),
         lambda c: _keras_h5(c.backbone_weights) and c.backbone not in APPLICATIONS,
         lambda c: f"backbone_weights={c.backbone_weights!r}: a Keras *_notop.h5 file loads into the "
                   f"keras.applications backbones {sorted(APPLICATIONS)} only, not backbone={c.backbone!r}"),
    Rule(("backbone_weights", "backbone"),
         lambda c: c.backbone_weights == "torchvision" and c.backbone not in TORCHVISION_BACKBONES,
         lambda c: f"backbone_weights='torchvision' with backbone={c.backbone!r}: torchvision's ImageNet weights are "
                   f"converted for {list(TORCHVISION_BACKBONES)} only; choose one of them, or other backbone_weights"),
    Rule(("backbone_weights", "backbone_width"),
         lambda c: c.backbone_weights == "torchvision" and c.backbone_width != 1.0,
         lambda c: f"backbone_width={c.backbone_width} with backbone_weights='torchvision': torchvision publishes the "
                   "width-1.0 networks only; expected backbone_width=1.0"),
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

# warmup_steps cannot be compared with epochs before the data gives the steps per epoch, so the
# warmup rule compares warmup_epochs (when warmup_steps is 0) and the cosine schedule checks
# warmup_steps when it is built. min_lr is compared with lr before any batch-size scaling.
SCHEDULE_RULES = (
    Rule(("lr_schedule", "lr_steps"), lambda c: c.lr_schedule == "step" and c.lr_steps is None,
         lambda c: "lr_schedule='step' with lr_steps=None: the step schedule follows the lr_steps table; set "
                   "lr_steps={epoch: multiplier of lr}, e.g. {30: 0.1, 60: 0.01}"),
    Rule(("warmup_epochs", "epochs"), lambda c: c.warmup_steps == 0 and c.warmup_epochs >= c.epochs,
         lambda c: f"warmup_epochs={c.warmup_epochs} with epochs={c.epochs}: the warmup would last the whole "
                   "training; expected warmup_epochs < epochs"),
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

COMPATIBILITY_RULES = HEAD_RULES + BACKBONE_RULES + SLIMMING_RULES + SCHEDULE_RULES
