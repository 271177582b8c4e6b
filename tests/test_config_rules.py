"""The rules between settings (utils/rules/): each stops `load_config` with its one line."""

import dataclasses

import pytest

from configs import Config
from utils.config import ConfigError, load_config
from utils.rules import RULES

GROUPS = {"head": "groups", "groups": {"colour": 3, "type": 2}}
IGNORED_WITH_GROUPS = " would be ignored with head='groups': "
PRUNABLE = ("['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext18', 'resnext50_32x4d', "
            "'resnext101_32x8d', 'preact_resnet18', 'preact_resnet34', 'preact_resnet50', 'preact_resnet101', "
            "'mixnet18']")

# (settings, the one line). Files named here are made by the `files` fixture.
BROKEN = [
    ({**GROUPS, "class_names": ["type", "colour"]},
     "groups={'colour': 3, 'type': 2} with class_names=['type', 'colour']: the groups are the label columns, in "
     "order; expected the class_names as their names"),
    ({"backbone": "convnext_tiny", "normalization": "imagenet"},
     "normalization='imagenet' with backbone='convnext_tiny': the keras.applications backbones normalise their "
     "[0, 255] input themselves; expected normalization='backbone'"),
    ({"backbone": "hub:dinov2_small", "normalization": "imagenet"},
     "normalization='imagenet' with backbone='hub:dinov2_small': a keras-hub preset brings its own input "
     "normalisation; expected normalization='backbone'"),
    ({"early_stopping_patience": 3, "val_labels": ""},
     "early_stopping_patience=3 with val_labels='': early stopping watches the validation mAP; set val_labels, "
     "or early_stopping_patience=0"),
    ({"backbone_weights": "preset"},
     "backbone_weights='preset' with backbone='resnet18': 'preset' loads the weights of a keras-hub preset "
     "(backbone='hub:<preset>') and only those; a preset's own weights are backbone_weights='preset'"),
    ({"pooling": "class_token"},
     "pooling='class_token' with backbone='resnet18': only keras-hub ViT presets (backbone='hub:<preset>') give a "
     "class token; choose avg, max, avg+max or flatten"),
    ({"tfrecord_dir": "records"}, "tfrecord_dir='records' would be ignored with data_format='files': only "
                                  "data_format='tfrecord' reads it; set data_format='tfrecord', or tfrecord_dir=''"),
    ({"head": "groups"}, "head='groups' with groups=None: head='groups' and a groups dict ({group: number of "
                         "classes}) go together"),
    ({"groups": {"a": 3}}, "head='linear' with groups={'a': 3}: head='groups' and a groups dict ({group: number of "
                           "classes}) go together"),
    ({"head": "csra", "csra_heads": 3, "csra_temperatures": [1, 2]},
     "csra_temperatures=[1, 2] must list one temperature per head (csra_heads=3)"),
    ({"head": "csra", "csra_heads": 3}, "csra_heads=3 has no temperature set in the paper; use 1, 2, 4, 6 or 8, or "
                                        "list one temperature per head in csra_temperatures"),
    ({"csra_temperatures": [1, 99], "csra_heads": 2},
     "csra_temperatures=[1, 99] would be ignored with head='linear': only head='csra' reads it; set head='csra', or "
     "csra_temperatures=None"),
    ({"head": "csra", "pooling": "flatten"},
     "pooling='flatten' would be ignored with head='csra': only head 'linear' or 'groups' pools the feature map; "
     "choose one of them, or leave pooling at its default"),
    ({"label_embeddings": "glove.txt"},
     "label_embeddings='glove.txt' would be ignored with head='linear': only head 'ml_gcn' or 'ssgrl' reads word "
     "vectors; choose one of them, or label_embeddings=''"),
    ({"head": "query2label", "decoder_width": 100, "decoder_heads": 8},
     "decoder_width=100 with decoder_heads=8: each attention head takes decoder_width / decoder_heads channels; "
     "expected a multiple of 8"),
    ({"head": "csra", "decoder_layers": 2},
     "decoder_layers=2 would be ignored with head='csra': only head 'query2label' or 'ml_decoder' has decoder layers; "
     "choose one of them, or decoder_layers=None"),
    ({"head": "query2label", "ml_decoder_groups": 20},
     "ml_decoder_groups=20 would be ignored with head='query2label': only head='ml_decoder' reads it; set "
     "head='ml_decoder', or ml_decoder_groups=None"),
    ({"backbone_weights": "imagenet"}, "backbone_weights='imagenet': there are no ImageNet weights for "
                                       "backbone='resnet18'; use one of ['convnext_tiny', 'efficientnet_lite0', "
                                       "'efficientnetv2_b0', 'efficientnetv2_s', 'keras_resnet101', "
                                       "'keras_resnet101v2', 'keras_resnet50', 'keras_resnet50v2', 'mobilenetv2', "
                                       "'mobilenetv3_large', 'mobilenetv3_small'], or a weights file path"),
    ({"backbone_weights": "resnet_notop.h5", "backbone": "resnet34"},
     "backbone_weights='resnet_notop.h5': a Keras *_notop.h5 file loads into the keras.applications backbones "
     "['convnext_tiny', 'efficientnetv2_b0', 'efficientnetv2_s', 'keras_resnet101', 'keras_resnet101v2', "
     "'keras_resnet50', 'keras_resnet50v2', 'mobilenetv2', 'mobilenetv3_large', 'mobilenetv3_small'] only, not "
     "backbone='resnet34'"),
    ({"backbone": "resnext18", "backbone_weights": "torchvision", "backbone_width": 1.0},
     "backbone_weights='torchvision' with backbone='resnext18': torchvision's ImageNet weights are converted for "
     "['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d'] only; "
     "choose one of them, or other backbone_weights"),
    ({"backbone_weights": "torchvision"},
     "backbone_width=0.25 with backbone_weights='torchvision': torchvision publishes the width-1.0 networks only; "
     "expected backbone_width=1.0"),
    ({**GROUPS, "mixup_alpha": 0.2}, "mixup_alpha=0.2" + IGNORED_WITH_GROUPS + "MixUp mixes label vectors, but a "
                                     "group's label is one class index; set mixup_alpha=0"),
    ({**GROUPS, "cutmix_alpha": 1.0}, "cutmix_alpha=1.0" + IGNORED_WITH_GROUPS + "CutMix mixes label vectors, but a "
                                      "group's label is one class index; set cutmix_alpha=0"),
    ({**GROUPS, "repeat_factor_threshold": 0.05},
     "repeat_factor_threshold=0.05" + IGNORED_WITH_GROUPS + "repeat-factor sampling counts the positives of each "
     "class column, but a group's label is one class index; set repeat_factor_threshold=0"),
    ({**GROUPS, "pos_weight": "auto"}, "pos_weight='auto'" + IGNORED_WITH_GROUPS + "the one-of-K losses have no "
                                       "positive weight per class; set pos_weight=None"),
    ({**GROUPS, "loss": "focal"}, "focal_alpha=0.25 would be ignored with head='groups' and loss='focal': the one-of-K "
                                  "focal loss has no class weighting; set focal_alpha=-1 (off)"),
    ({**GROUPS, "loss": "asl"}, "asl_clip=0.05 would be ignored with head='groups' and loss='asl': the one-of-K ASL "
                                "has no probability shift; set asl_clip=0"),
    ({**GROUPS, "temperature_scaling": True}, "temperature_scaling=True" + IGNORED_WITH_GROUPS + "a temperature is "
                                              "fitted for sigmoid outputs only; set temperature_scaling=False"),
    ({**GROUPS, "class_weighting": "inverse"},
     "class_weighting='inverse'" + IGNORED_WITH_GROUPS + "the one-of-K losses have no positive and negative term per "
     "class to weight; set class_weighting='none'"),
    ({**GROUPS, "balanced_epochs": 2},
     "balanced_epochs=2" + IGNORED_WITH_GROUPS + "class-balanced sampling counts the positives of each class column, "
     "not group indices; set balanced_epochs=0"),
    ({"balanced_lr": 0.001}, "balanced_lr=0.001 would be ignored with balanced_epochs=0: only the balanced stage reads "
                             "it; set balanced_epochs, or balanced_lr=None"),
    ({"pos_weight": "auto", "class_weighting": "effective_number"},
     "pos_weight='auto' with class_weighting='effective_number': both weight the positive term (pos_weight='auto' is "
     "class_weighting='inverse'); set one of them"),
    ({"ema_decay": 0.99, "balanced_epochs": 2},
     "ema_decay=0.99 with balanced_epochs=2: the average would carry the first stage's head into the stage's "
     "validation; set ema_decay=0, or balanced_epochs=0"),
    ({"early_stopping_patience": 2, "balanced_epochs": 2},
     "early_stopping_patience=2 with balanced_epochs=2: an early stop would end the run before the balanced stage; "
     "set one of them to 0"),
    ({"lr_schedule": "step"}, "lr_schedule='step' with lr_steps=None: the step schedule follows the lr_steps table; "
                              "set lr_steps={epoch: multiplier of lr}, e.g. {30: 0.1, 60: 0.01}"),
    ({"lr_steps": {3: 0.1}}, "lr_steps={3: 0.1} would be ignored with lr_schedule='cosine': only lr_schedule='step' "
                             "reads it; set lr_schedule='step', or lr_steps=None"),
    ({"warmup_epochs": 8, "epochs": 8}, "warmup_epochs=8.0 with epochs=8: the warmup would last the whole training; "
                                        "expected warmup_epochs < epochs"),
    ({"min_lr": 0.1, "lr": 0.01}, "min_lr=0.1 with lr=0.01: the lowest learning rate is above the peak; expected "
                                  "min_lr <= lr"),
    ({"train_labels": ""}, "train_labels is empty; training needs a label file"),
    ({"lr_schedule": "plateau", "val_labels": ""},
     "lr_schedule='plateau' with val_labels='': the plateau schedule cuts the learning rate when the validation mAP "
     "stops improving; set val_labels, or another lr_schedule"),
    ({"strategy": "multi_worker"}, "strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster and "
                                   "this worker's task); see learning_notes/06-scaling.md"),
    ({"mode": "test", "test_labels": ""}, "test_labels is empty; mode=test needs a label file"),
    ({"mode": "predict"}, "input is empty; mode=predict needs input=<image | folder | label file>"),
    ({"mode": "debug", "train_labels": ""}, "train_labels is empty; mode=debug needs a training batch"),
    ({"mode": "import", "import_output": "out.csv"}, "import_source is empty; name the annotation file or folder to "
                                                     "import"),
    ({"mode": "import", "import_source": "voc"}, "import_output is empty; name the CSV file to write"),
    ({"mode": "convert", "train_labels": ""},
     "formats includes 'tflite_int8' with train_labels='': tflite_int8 is calibrated on training images; set "
     "train_labels, or leave tflite_int8 out of formats"),
    ({"mode": "stats", "train_labels": "", "val_labels": "", "test_labels": ""},
     "mode=stats with train_labels, val_labels and test_labels all empty: name at least one label file"),
    ({"slimming_l1": 1e-4, "backbone": "mobilenetv2"},
     "slimming_l1=0.0001 with backbone='mobilenetv2': network slimming prunes the hand-written backbones "
     + PRUNABLE + " only; choose one of them"),
    ({"pruned_channels": "channels.json", "backbone": "hub:dinov2_small"},
     "pruned_channels='channels.json' with backbone='hub:dinov2_small': network slimming prunes the hand-written "
     "backbones " + PRUNABLE + " only; choose one of them"),
    ({"mode": "prune", "backbone": "convnext_tiny"},
     "mode=prune with backbone='convnext_tiny': network slimming prunes the hand-written backbones " + PRUNABLE
     + " only; choose one of them"),
    ({"loss": "hill", "unknown_labels": "negative"},
     "unknown_labels='negative' would be ignored with loss='hill': loss 'hill', 'splc', 'llr' or 'epr' gives -1 "
     "labels a term of its own; set unknown_labels='ignore'"),
    ({**GROUPS, "unknown_labels": "weighted"},
     "unknown_labels='weighted'" + IGNORED_WITH_GROUPS + "the one-of-K losses leave an unknown (-1) group label out, "
     "there is no negative to take it for; set unknown_labels='ignore'"),
    ({**GROUPS, "loss": "llr"},
     "head='groups' with loss='llr': the partial-label losses have no one-of-K version; choose bce, focal, ghm or asl"),
    ({"mode": "find_label_errors", "train_labels": ""},
     "train_labels is empty; mode=find_label_errors needs the label file to check"),
    ({**GROUPS, "mode": "find_label_errors"},
     "mode=find_label_errors with head='groups': it ranks 1/0 labels of sigmoid classes, not group indices; choose "
     "another head"),
    ({"mode": "find_label_errors", "lr_schedule": "plateau"},
     "mode=find_label_errors with lr_schedule='plateau': each fold trains without a validation split, which the "
     "plateau schedule watches; choose another lr_schedule"),
    ({"mode": "find_label_errors", "early_stopping_patience": 2},
     "mode=find_label_errors with early_stopping_patience=2: each fold trains without a validation split, which "
     "early stopping watches; set early_stopping_patience=0"),
    ({"mode": "find_label_errors", "label_error_epochs": 1, "warmup_epochs": 1.0},
     "warmup_epochs=1.0 with label_error_epochs=1: the warmup would last each fold's whole training; expected "
     "warmup_epochs < label_error_epochs"),
]

ALLOWED = [
    {},
    {"data_format": "tfrecord", "tfrecord_dir": "records", "cache_images": True},
    GROUPS,  # the default loss settings pass with a groups head: focal_alpha counts with loss='focal' only
    {**GROUPS, "loss": "focal", "focal_alpha": -1},
    {**GROUPS, "loss": "asl", "asl_clip": 0.0},
    {**GROUPS, "loss": "ghm", "pooling": "flatten"},
    {"freeze_epochs": 8, "epochs": 8},  # the head alone, on a frozen backbone
    {"warmup_epochs": 10, "epochs": 8, "warmup_steps": 100},  # warmup_steps > 0 replaces warmup_epochs
    {"min_lr": 0.01, "lr": 0.01},
    {"balanced_epochs": 2, "balanced_lr": 0.001, "balanced_reset_head": False},
    {"class_weighting": "effective_number", "class_weight_beta": 0.99, "loss": "asl"},
    {"class_weighting": "inverse", "early_stopping_patience": 2},  # early stopping without a balanced stage
    {"pos_weight": "auto"},  # kept: the same weights as class_weighting='inverse'
    {"balanced_epochs": 2, "repeat_factor_threshold": 0.1},  # repeat factors in the first stage
    {"head": "csra", "csra_heads": 3, "csra_temperatures": [1, 2, 99]},
    {"head": "ml_gcn", "label_embeddings": "glove.txt", "ghm_bins": 10},  # ghm_bins with loss='bce': left alone
    {"head": "ml_decoder", "decoder_layers": 2, "ml_decoder_groups": 20, "decoder_width": 96, "decoder_heads": 4},
    {"head": "linear", "decoder_width": 96, "decoder_heads": 4},  # working defaults of another head: left alone
    {"backbone": "convnext_tiny", "backbone_weights": "imagenet"},
    {"backbone": "efficientnet_lite0", "backbone_weights": "imagenet"},  # from its pip package
    {"backbone": "resnet50", "normalization": "standardize"},
    {**GROUPS, "class_names": ["colour", "type"]},
    {"backbone": "mobilenetv2", "backbone_weights": "resnet_notop.h5"},
    {"backbone": "resnext101_32x8d", "backbone_weights": "torchvision", "backbone_width": 1.0},
    {"lr_schedule": "step", "lr_steps": {3: 0.1}},
    {"mode": "test", "lr_schedule": "plateau", "val_labels": ""},  # only training reads val_labels
    {"mode": "train", "input": "photos", "import_source": "voc"},  # other modes' settings: left alone
    {"mode": "import", "import_source": "voc", "import_output": "out.csv", "train_labels": ""},
    {"mode": "convert", "train_labels": "", "formats": ("keras", "tflite_float32")},
    {"mode": "check", "train_labels": "", "val_labels": ""},
    {**GROUPS, "mode": "predict", "input": "photos"},  # every mode handles a groups head
    {**GROUPS, "mode": "debug"},
    {**GROUPS, "mode": "convert"},
    {"backbone": "mixnet18", "slimming_l1": 1e-4, "l2_bn_gamma": 1e-5},
    {"mode": "prune", "backbone": "resnext18", "prune_ratio": 0.7, "pruned_channels": "channels.json"},
    {"loss": "focal", "unknown_labels": "weighted", "class_weighting": "effective_number"},
    {"loss": "splc", "splc_start_epoch": 0, "label_smoothing": 0.1, "mixup_alpha": 0.2},  # soft known targets
    {"loss": "epr", "epr_expected_positives": 2.9, "hill_lamb": 2.0},  # another loss's setting: left alone
    {"mode": "find_label_errors", "label_error_folds": 3, "label_error_epochs": 2, "label_error_examples": 0},
    {"mode": "find_label_errors", "label_error_epochs": 1, "warmup_epochs": 2.0, "warmup_steps": 10},
    {"mode": "find_label_errors", "val_labels": ""},  # train_labels alone are checked
    {"lr_schedule": "plateau", "label_error_epochs": 1, "warmup_epochs": 2.0, "epochs": 8},  # other modes: left alone
]


@pytest.fixture(autouse=True)
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    (tmp_path / "glove.txt").write_text("a 0.1 0.2\n")
    (tmp_path / "resnet_notop.h5").write_bytes(b"")
    (tmp_path / "channels.json").write_text("{}")


def arguments(settings):
    return [f"{key}={value!r}" for key, value in settings.items()]


@pytest.mark.parametrize("settings, expected", BROKEN, ids=[" ".join(arguments(s)) for s, _ in BROKEN])
def test_broken_combination_stops_with_its_one_line(settings, expected):
    with pytest.raises(ConfigError) as info:
        load_config(arguments(settings))
    assert str(info.value) == expected


@pytest.mark.parametrize("settings", ALLOWED, ids=[" ".join(arguments(s)) or "defaults" for s in ALLOWED])
def test_allowed_combination_loads(settings):
    config = load_config(arguments(settings))
    assert all(getattr(config, key) == value for key, value in settings.items())


def test_every_rule_has_a_broken_case():
    first_broken = set()
    for settings, _ in BROKEN:
        config = dataclasses.replace(Config(), **settings)
        first_broken.add(next(i for i, rule in enumerate(RULES) if rule.broken(config)))
    missed = [RULES[i].keys for i in range(len(RULES)) if i not in first_broken]
    assert missed == []


def test_rules_name_their_settings():
    names = {field.name for field in dataclasses.fields(Config)}
    assert all(rule.keys and set(rule.keys) <= names for rule in RULES)


def test_multi_worker_with_tf_config_loads(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {}}')
    assert load_config(["strategy='multi_worker'"]).strategy == "multi_worker"
