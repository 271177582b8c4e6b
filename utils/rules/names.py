"""The names the rules and ranges compare a setting against.

Where configs.py has the list as a `Literal` type, it is read from there. Four lists are copies of a
registry of a higher layer: utils may import only configs and the standard library (the layers), and a
config error is printed before TensorFlow is imported, which those registries' modules bring in. Each
copy is kept here only, and a test fails when it and its registry differ.
"""

import typing

from configs import (
    EfficientNetLite,
    KerasApplication,
    LabelGraphHead,
    MixNet,
    PartialLabelLoss,
    PoolingHead,
    QueryHead,
    ResNet,
)

APPLICATIONS = typing.get_args(KerasApplication)  # the keras.applications backbones, with ImageNet weights
# backbone_weights="imagenet": Keras's files for the keras.applications backbones, a pip package's for Lite0
IMAGENET_BACKBONES = APPLICATIONS + typing.get_args(EfficientNetLite)
BACKBONE_NAMES = typing.get_args(ResNet) + typing.get_args(MixNet) + typing.get_args(EfficientNetLite) + APPLICATIONS
POOLING_HEADS = typing.get_args(PoolingHead)  # the heads that read `pooling`
LABEL_GRAPH_HEADS = typing.get_args(LabelGraphHead)  # the heads that read `label_embeddings`
QUERY_HEADS = typing.get_args(QueryHead)  # the heads with a transformer decoder
PARTIAL_LABEL_LOSSES = typing.get_args(PartialLabelLoss)  # the losses that give -1 labels a term of their own

# Copies of higher layers' registries (see above); the test named beside each ties the two.
HUB_PREFIX = "hub:"  # backbone.hub.PRESET_PREFIX (tests/test_registries.py)
# The csra_heads that the CSRA paper gives temperatures for: multi_label.heads.csra.PAPER_TEMPERATURES
# (tests/test_registries.py).
CSRA_PAPER_HEADS = (1, 2, 4, 6, 8)
# The backbones with torchvision ImageNet weights: backbone.torchvision_weights.TORCHVISION_WEIGHTS
# (tests/test_torchvision_weights.py).
TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                         "resnext101_32x8d")
# The backbones network slimming prunes: multi_label.slimming.families.FAMILIES (tests/test_slimming.py).
# The hand-written ones, so it is read from their types; the test fails when a family is added or missing.
PRUNABLE_BACKBONES = typing.get_args(ResNet) + typing.get_args(MixNet)
