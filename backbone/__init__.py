"""Backbone registry: config name -> (builder, default input normalisation).

A builder takes the normalised input tensor and a width multiplier and returns the last feature
map; the head is written once and works on any of them. The layers a builder creates are named
after its registry name (a prefix for the hand-written ResNets, the name of one nested model for
the `keras.applications` wrappers, "hub" for a keras-hub preset): `multi_label.model.backbone_layers`
finds them that way. `hub:<preset>` names any keras-hub image encoder preset (backbone/hub.py).
"""

import functools

from backbone import applications, hub, resnet

BACKBONES = {
    "resnet18": (resnet.resnet18, "imagenet"),
    "resnet34": (resnet.resnet34, "imagenet"),
    "resnet50": (resnet.resnet50, "imagenet"),
    "resnet101": (resnet.resnet101, "imagenet"),
    "resnet152": (resnet.resnet152, "imagenet"),
    "resnext18": (resnet.resnext18, "imagenet"),
    "resnext50_32x4d": (resnet.resnext50_32x4d, "imagenet"),
    "resnext101_32x8d": (resnet.resnext101_32x8d, "imagenet"),
    "preact_resnet18": (resnet.preact_resnet18, "imagenet"),
    "preact_resnet34": (resnet.preact_resnet34, "imagenet"),
    "preact_resnet50": (resnet.preact_resnet50, "imagenet"),
    "preact_resnet101": (resnet.preact_resnet101, "imagenet"),
    # keras.applications models take [0, 255] pixels: each wrapper applies the normalisation its
    # Keras model was trained with (see backbone/applications.py), so the registry says "raw".
    **{name: (functools.partial(applications.build_application, name), "raw") for name in applications.APPLICATIONS},
}


def is_hub_backbone(name):
    """Whether a config name is a keras-hub preset, "hub:<preset name or folder>"."""
    return name.startswith(hub.PRESET_PREFIX) and len(name) > len(hub.PRESET_PREFIX)


def get_backbone(name):
    """Returns (builder, normalisation) for a config name; ValueError names the allowed ones.

    A keras-hub preset's builder applies the preset's own normalisation, so the registry says "raw".
    """
    if is_hub_backbone(name):
        return functools.partial(hub.build_hub_backbone, name[len(hub.PRESET_PREFIX):]), "raw"
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)} or hub:<keras-hub preset>. "
                         f"Received: backbone={name!r}")
    return BACKBONES[name]
