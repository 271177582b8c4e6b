"""Wires input normalisation, a backbone and a head into one Keras model.

Importing this module registers every custom layer of the model (normalisation, backbones,
heads), so a `.keras` file of it loads in safe mode.
"""

import os

import keras

from backbone import BACKBONES, get_backbone
from backbone.applications import APPLICATIONS, load_imagenet_weights
from multi_label.heads import HEADS, HeadSettings
from multi_label.preprocessing import InputNormalization
from utils.config import ConfigError
from utils.settings import pick, settings_class

ModelSettings = settings_class(
    "ModelSettings",
    """backbone backbone_width backbone_weights normalization image_size""",
    """The settings `build_model` reads: the backbone and input ones, and those of the heads.""",
    __name__, bases=(HeadSettings,))


def build_model(settings, num_classes, train_labels=None, class_names=None):
    """Builds the classifier: images in [0, 255] of any size -> logits [batch, num_classes].

    A `groups` head gives a dict of logits instead, one [batch, K] entry per attribute group.

    Args:
        settings: ModelSettings. The backbone, its input and the head.
        num_classes: int. Number of labels (label columns).
        train_labels: np.ndarray or None. Training labels [N, num_classes]; needed by the
            label-graph heads (ml_gcn, ssgrl), which keep the co-occurrence graph inside the model.
        class_names: list[str] or None. Needed with `label_embeddings` (word vectors by class name).
    """
    build_backbone, default_normalization = get_backbone(settings.backbone)
    head = HEADS[settings.head]
    mode = default_normalization if settings.normalization == "backbone" else settings.normalization
    # Height and width are left open: global pooling makes the head independent of input size.
    # Flattening makes the feature map's size part of the head, so the input size is fixed then.
    side = settings.image_size if settings.pooling == "flatten" and head.uses_pooling else None
    images = keras.Input((side, side, 3), name="image")
    features = build_backbone(InputNormalization(mode, name="normalization")(images), width=settings.backbone_width)
    logits = head.build(features, num_classes, pick(HeadSettings, settings), train_labels=train_labels,
                        class_names=class_names)
    model = keras.Model(images, logits, name=f"{settings.backbone}_{settings.head}")
    if settings.backbone_weights not in ("", "none"):
        load_backbone_weights(model, settings.backbone_weights, settings.backbone, settings.backbone_width)
    return model


def backbone_layers(model, backbone=None):
    """The layers of `model` that its backbone built, found by their registry-name prefix.

    Args:
        model: keras.Model. From `build_model` (or loaded from its `.keras` file).
        backbone: str or None. Registry name; None: read from the model's name.
    """
    backbone = backbone or backbone_name(model)
    found = [layer for layer in model.layers if layer.name == backbone or layer.name.startswith(backbone + "_")]
    if not found:
        raise ValueError(f"model {model.name!r} has no layers of backbone {backbone!r}")
    return found


def backbone_name(model):
    """The registry name of a model's backbone, from the model name `<backbone>_<head>`."""
    names = [name for name in BACKBONES if model.name.startswith(name + "_")]
    if not names:
        raise ValueError(f"model {model.name!r} is not named <backbone>_<head> with a backbone of {sorted(BACKBONES)}")
    return max(names, key=len)


def load_backbone_weights(model, path, backbone=None, width=1.0):
    """Sets the backbone's weights; the head is left as initialised.

    Args:
        model: keras.Model. From `build_model`.
        path: str. "imagenet" (the Keras ImageNet weights of a keras.applications backbone,
            downloaded once into the Keras cache), a `.keras` model or `.weights.h5` file of a
            model with the same backbone, or a Keras `*_notop.h5` weights file of a
            keras.applications backbone (e.g. the ImageNet file copied from another machine).
        backbone: str or None. Registry name; None: read from the model's name.
        width: float. The backbone width (selects the MobileNets' ImageNet file).
    """
    backbone = backbone or backbone_name(model)
    if path == "imagenet":
        if backbone not in APPLICATIONS:
            raise ConfigError(f"backbone_weights='imagenet': Keras publishes no ImageNet weights for "
                              f"backbone={backbone!r}; use one of {sorted(APPLICATIONS)}, or a weights file path")
        try:
            load_imagenet_weights(model.get_layer(backbone), backbone, width)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return
    if not os.path.isfile(path):
        raise ConfigError(f"backbone_weights={path!r}: file not found; expected 'none', 'imagenet' or a .keras, "
                          ".weights.h5 or Keras *_notop.h5 file")
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False, safe_mode=True)  # no code from the file runs
        by_name = {layer.name: layer for layer in source.layers}
        layers = [layer for layer in backbone_layers(model, backbone) if layer.weights]
        if not all(layer.name in by_name for layer in layers):
            raise ConfigError(f"backbone_weights={path!r} holds no backbone {backbone!r} (another backbone or width?)")
        for layer in layers:
            try:
                layer.set_weights(by_name[layer.name].get_weights())
            except ValueError:
                raise ConfigError(f"backbone_weights={path!r}: layer {layer.name!r} has other shapes there "
                                  "(another backbone_width?)") from None
    elif path.endswith(".weights.h5"):
        model.load_weights(path, skip_mismatch=True)
    elif path.endswith((".h5", ".hdf5")):
        if backbone not in APPLICATIONS:
            raise ConfigError(f"backbone_weights={path!r}: a Keras *_notop.h5 file loads into the keras.applications "
                              f"backbones {sorted(APPLICATIONS)} only, not backbone={backbone!r}")
        model.get_layer(backbone).load_weights(path)
    else:
        raise ConfigError(f"backbone_weights={path!r}: unknown file type; expected a .keras, .weights.h5 or Keras "
                          "*_notop.h5 file")
