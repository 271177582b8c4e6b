"""Backbone registry: config name -> (builder, default input normalisation).

A builder takes the normalised input tensor and a width multiplier and returns the last feature
map; the head is written once and works on any of them. The layers a builder creates are named
after its registry name (a prefix for the hand-written ResNets, MixNet-18 and EfficientNet-Lite0,
the name of one nested model for the `keras.applications` wrappers, "hub" for a keras-hub preset):
`multi_label.model.backbone_layers` finds them that way. `hub:<preset>` names any keras-hub image
encoder preset (backbone/hub.py).
"""

import functools

from backbone import applications, efficientnet_lite, hub, mixnet, resnet

BACKBONES = {
    **{name: (build, "imagenet") for name, build in resnet.BUILDERS.items()},
    "mixnet18": (mixnet.mixnet18, "imagenet"),
    # its ImageNet weights (backbone/efficientnet_lite_weights.py) were trained on (x - 127) / 128
    "efficientnet_lite0": (efficientnet_lite.efficientnet_lite0, "centered"),
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
