"""Wires input normalisation, a backbone and a head into one Keras model.

Importing this module registers every custom layer of the model (normalisation, backbones,
heads), so a `.keras` file of it loads in safe mode.
"""

import dataclasses

import keras

from backbone import get_backbone, is_hub_backbone
from multi_label.backbone_weights import (  # noqa: F401  (re-exported: found through this module)
    backbone_layers,
    backbone_name,
    load_backbone_weights,
)
from multi_label.heads import HEADS, HeadSettings
from multi_label.preprocessing import InputNormalization
from multi_label.slimming.plan import read_plan
from multi_label.slimming.sparsity import apply_slimming_l1
from utils.config import ConfigError
from utils.defaults import DEFAULTS


@dataclasses.dataclass(frozen=True)
class ModelSettings(HeadSettings):
    """The settings `build_model` reads: the backbone and input ones, and those of the heads."""

    backbone: str = DEFAULTS.backbone
    backbone_width: float = DEFAULTS.backbone_width
    backbone_weights: str = DEFAULTS.backbone_weights
    normalization: str = DEFAULTS.normalization
    image_size: int = DEFAULTS.image_size
    pruned_channels: str = DEFAULTS.pruned_channels
    slimming_l1: float = DEFAULTS.slimming_l1


def build_model(settings, num_classes, train_labels=None, class_names=None):
    """Builds the classifier: images in [0, 255] of any size -> logits [batch, num_classes].

    A `groups` head gives a dict of logits instead, one [batch, K] entry per attribute group.

    Args:
        settings: ModelSettings. The backbone, its input and the head.
        num_classes: int. Number of labels (label columns).
        train_labels: np.ndarray or None. Training labels [N, num_classes]; needed by the
            label-graph heads (ml_gcn, ssgrl), which keep the co-occurrence graph inside the model.
        class_names: list[str] or None. Needed with `label_embeddings` (word vectors by class name); with
            backbone_weights=<file>, the file's head is copied when `classes.json` beside it names these.
    """
    build_backbone, default_normalization = get_backbone(settings.backbone)
    head = HEADS[settings.head]
    mode = default_normalization if settings.normalization == "backbone" else settings.normalization
    hub = is_hub_backbone(settings.backbone)
    # Height and width are left open: global pooling makes the head independent of input size.
    # Flattening makes the feature map's size part of the head, and a keras-hub encoder is built
    # for one size (a ViT's patch grid), so the input size is fixed then.
    side = settings.image_size if hub or (settings.pooling == "flatten" and head.uses_pooling) else None
    images = keras.Input((side, side, 3), name="image")
    options = {"pretrained": settings.backbone_weights == "preset",
               "class_token": settings.pooling == "class_token" and head.uses_pooling} if hub else {}
    if settings.pruned_channels:  # a network slimmed by mode=prune: its thinner layers
        options["channel_plan"] = channel_plan(settings)
    try:
        features = build_backbone(InputNormalization(mode, name="normalization")(images),
                                  width=settings.backbone_width, **options)
    except ValueError as error:  # a plan that does not fit this network
        if not settings.pruned_channels:
            raise
        raise ConfigError(f"pruned_channels={settings.pruned_channels!r}: {error}") from None
    features = head_input(features, settings.pooling if head.uses_pooling else None, settings.backbone)
    logits = head.build(features, num_classes, settings, train_labels=train_labels,
                        class_names=class_names)
    # A keras-hub preset name may hold "/" (a folder), which a Keras name may not: its layers are "hub".
    model = keras.Model(images, logits, name=f"{'hub' if hub else settings.backbone}_{settings.head}")
    if settings.backbone_weights not in ("", "none", "preset"):  # a preset's own: loaded as it was built
        load_backbone_weights(model, settings.backbone_weights, settings.backbone, settings.backbone_width,
                              class_names)
    if settings.slimming_l1 > 0:  # sparsity training; apply_weight_decay keeps it beside any L2
        apply_slimming_l1(model, settings.slimming_l1, settings.backbone)
    return model


def channel_plan(settings):
    """The kept channels of the `pruned_channels` plan file, after checking it is for this backbone and width."""
    try:
        plan = read_plan(settings.pruned_channels)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if (plan.backbone, plan.backbone_width) != (settings.backbone, settings.backbone_width):
        raise ConfigError(f"pruned_channels={settings.pruned_channels!r} is a plan for backbone={plan.backbone!r} "
                          f"at backbone_width={plan.backbone_width}; expected backbone={settings.backbone!r} at "
                          f"backbone_width={settings.backbone_width}")
    return plan.channels


def head_input(features, pooling, backbone):
    """The feature map a head reads: a ViT's patch grid, or its pooled token as a 1x1 map.

    Args:
        features: KerasTensor or (KerasTensor, KerasTensor). The backbone's output: a feature map,
            or (patch grid, pooled token) from a keras-hub ViT.
        pooling: str or None. The pooling of a pooling head; "class_token" picks the token.
        backbone: str. The backbone setting, for the message.
    """
    grid, token = features if isinstance(features, tuple) else (features, None)
    if pooling != "class_token":
        return grid
    if token is None:
        raise ConfigError(f"pooling='class_token' with backbone={backbone!r}: this backbone gives no class token "
                          "(a CNN); expected a keras-hub ViT preset (DINOv2, CLIP, SigLIP, ViT) or another pooling")
    # A 1x1 map: global pooling of it is the token itself, so every pooling head takes it unchanged.
    return keras.layers.Reshape((1, 1, token.shape[-1]), name="class_token")(token)
