"""Backbone registry: config name -> (builder, default input normalisation).

A builder takes the normalised input tensor and a width multiplier and returns the last feature
map; the head is written once and works on any of them.
"""

from backbone import resnet

BACKBONES = {
    "resnet18": (resnet.resnet18, "imagenet"),
    "resnet34": (resnet.resnet34, "imagenet"),
    "resnet50": (resnet.resnet50, "imagenet"),
    "resnet101": (resnet.resnet101, "imagenet"),
    "resnet152": (resnet.resnet152, "imagenet"),
    "resnext18": (resnet.resnext18, "imagenet"),
    "resnext50_32x4d": (resnet.resnext50_32x4d, "imagenet"),
    "resnext101_32x8d": (resnet.resnext101_32x8d, "imagenet"),
}


def get_backbone(name):
    """Returns (builder, normalisation) for a config name; ValueError names the allowed ones."""
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}. Received: backbone={name!r}")
    return BACKBONES[name]
