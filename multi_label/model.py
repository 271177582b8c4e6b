"""Wires input normalisation, a backbone and a head into one Keras model."""

import keras

from backbone import get_backbone
from multi_label.heads import HEADS
from multi_label.preprocessing import InputNormalization


def build_model(config, num_classes):
    """Builds the classifier: images in [0, 255] of any size -> logits [batch, num_classes].

    Args:
        config: Config. Reads backbone, backbone_width, backbone_weights, normalization, head,
            pooling, dropout.
        num_classes: int. Number of labels.
    """
    build_backbone, default_normalization = get_backbone(config.backbone)
    if config.head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}. Received: head={config.head!r}")
    mode = default_normalization if config.normalization == "backbone" else config.normalization
    # Height and width are left open: global pooling makes the head independent of input size.
    images = keras.Input((None, None, 3), name="image")
    features = build_backbone(InputNormalization(mode, name="normalization")(images), width=config.backbone_width)
    logits = HEADS[config.head](features, num_classes, config)
    model = keras.Model(images, logits, name=f"{config.backbone}_{config.head}")
    if config.backbone_weights not in ("", "none"):
        load_backbone_weights(model, config.backbone_weights)
    return model


def load_backbone_weights(model, path):
    """Loads weights saved from a model with the same backbone; the head is left as initialised."""
    import os
    if not os.path.isfile(path):
        raise ValueError(f"backbone_weights={path!r}: file not found; expected 'none' or a .weights.h5 file")
    source = keras.saving.load_model(path, compile=False) if path.endswith(".keras") else None
    if source is None:
        model.load_weights(path, skip_mismatch=True)
        return
    by_name = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if layer.name in by_name and layer.name != "logits" and layer.weights:
            layer.set_weights(by_name[layer.name].get_weights())
