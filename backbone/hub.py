"""keras-hub image encoders as backbones: `backbone="hub:<preset>"`.

A preset is a keras-hub name (e.g. "dinov2_small", downloaded once into the keras-hub cache) or
the path of a preset folder (`save_to_preset`, or a downloaded preset copied from another
machine). What the preset says is used as it says it: its input size (ViTs fix it with their
position embeddings), its input normalisation (the image converter's scale and offset, inside the
model, so exports take [0, 255] pixels too) and its weights.

The heads read a feature map [batch, h, w, channels]. A CNN gives its last one; a ViT gives patch
tokens, reshaped here to their grid, so every head (CSRA, ML-GCN, the query heads, max pooling)
works on every family. A ViT's pooled token (the class token of DINOv2, CLIP and ViT; the
attention-pooled token of SigLIP) is the second output, which `pooling="class_token"` reads.
"""

import os
from typing import NamedTuple, Optional, Union

import keras
import keras_hub
from keras import ops
from keras_hub.src.utils import preset_utils  # reads a preset's config.json without building it

PRESET_PREFIX = "hub:"


def _run(encoder, images):
    # keras-hub encoders are functional models with a dict input {"images": ...} or a plain one.
    return encoder({"images": images} if isinstance(encoder.input, dict) else images)


def _feature_map(encoder, images):
    return _run(encoder, images), None


def _token_sequence(prefix):
    # Token sequences [batch, prefix + patches, dim]: the class token first (when there is one),
    # then register tokens (DINOv2 with registers), then the patches in row-major order.
    def read(encoder, images):
        tokens = _run(encoder, images)
        return tokens[:, prefix(encoder):], tokens[:, 0] if has_class_token(encoder) else None
    return read


def _siglip(encoder, images):
    # SigLIP's encoder ends in attention pooling; the patch tokens are the input of that pooling.
    x = encoder.embedding(images)
    for block in encoder.encoder_layers:
        x = block(x)
    x = encoder.post_layer_norm(x)
    return x, encoder.head


def _unused(encoder, class_token):
    """The encoder's layers and variables that no output reads, so that no gradient reaches them."""
    name = family(encoder)
    if name == "DINOV2Backbone":
        # The mask token is for masked pretraining; keras-hub saves DINOv2's trained position
        # embeddings by interpolating them back to the pretraining grid, and only when their signed
        # sum moved, so trained ones could be lost in the .keras file: kept as pretrained, they
        # round-trip exactly.
        return [encoder.embeddings.mask_token, encoder.embeddings.interpolated_position_embeddings]
    if name == "SigLIPVisionEncoder" and not class_token:
        return encoder.head.weights
    return []


# keras-hub class name -> (how the encoder's output becomes (feature map or tokens, pooled token),
# whether the input size is fixed by the weights). The classes of CLIP and SigLIP presets hold a
# text encoder too: `vision_encoder` picks the image half.
FAMILIES = {
    "ResNetBackbone": (_feature_map, False),
    "EfficientNetBackbone": (_feature_map, False),
    # DINOv2 interpolates its position embeddings to the input size it is built at.
    "DINOV2Backbone": (_token_sequence(lambda e: 1 + e.num_register_tokens), False),
    "CLIPVisionEncoder": (_token_sequence(lambda e: 1), True),
    "SigLIPVisionEncoder": (_siglip, True),
    "ViTBackbone": (_token_sequence(lambda e: int(e.use_class_token)), True),
}
JOINT_MODELS = ("CLIPBackbone", "SigLIPBackbone", "SigLIP2Backbone")


def family(encoder):
    """The FAMILIES key of a keras-hub encoder; ValueError names the supported ones."""
    name = type(encoder).__name__
    if name not in FAMILIES:
        raise ValueError(f"keras-hub {name} is not a supported image encoder; supported: {sorted(FAMILIES)}")
    return name


def has_class_token(encoder):
    """Whether the encoder gives a pooled token beside its feature map (ViTs; not CNNs)."""
    name = family(encoder)
    if name == "ViTBackbone":
        return bool(encoder.use_class_token)
    return FAMILIES[name][0] is not _feature_map


@keras.saving.register_keras_serializable(package="multi_label")
class HubEncoder(keras.layers.Layer):
    """A keras-hub image encoder that returns a feature map [batch, h, w, channels].

    Args:
        encoder: keras_hub.models.Backbone (or its serialised config, when loading). One of
            `FAMILIES`, built for the input size it is used at.
        class_token: bool. Also return the pooled token: (feature map, token [batch, channels]).
    """

    def __init__(self, encoder, class_token=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if class_token and not has_class_token(encoder):
            raise ValueError(f"keras-hub {family(encoder)} gives no class token")
        for variable in _unused(encoder, class_token):
            variable.trainable = False
        self.encoder = encoder
        self.class_token = class_token

    def call(self, images):
        read, _ = FAMILIES[family(self.encoder)]
        features, token = read(self.encoder, images)
        grid = features
        if len(features.shape) == 3:  # patch tokens: square inputs give a square grid
            side = int(round(features.shape[1] ** 0.5))
            grid = ops.reshape(features, (-1, side, side, features.shape[-1]))
        if not self.class_token:
            return grid
        return grid, token(features) if callable(token) else token  # SigLIP pools on demand

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "class_token": self.class_token}


@keras.saving.register_keras_serializable(package="multi_label")
class ScaleOffset(keras.layers.Layer):
    """x * scale + offset on [0, 255] pixels: a keras-hub image converter's normalisation.

    Args:
        scale: float or list[float]. One value, or one per channel.
        offset: float or list[float]. One value, or one per channel.
    """

    def __init__(self, scale=1.0, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        scale = ops.convert_to_tensor(self.scale, dtype=x.dtype)
        offset = ops.convert_to_tensor(self.offset, dtype=x.dtype)
        return x * scale + offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


def _listed(value, default):
    if value is None:
        return default
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)


def cache_folder():
    """Where keras-hub keeps downloaded presets (kagglehub's cache; KAGGLEHUB_CACHE moves it)."""
    return os.environ.get("KAGGLEHUB_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kagglehub"))


class PresetInfo(NamedTuple):
    """What a preset's files say, read before anything is built.

    Args:
        family: str. The FAMILIES key of its image encoder.
        image_size: int or None. The input side its weights fix (ViTs), or None (any size).
        native_size: int or None. The side its image converter resizes to (the training size).
        patch_size: int or None. A ViT's patch side (the input side is a multiple of it).
        class_token: bool. The encoder gives a pooled token (`pooling="class_token"`).
        scale: float or list[float]. The converter's scale of [0, 255] pixels (per channel or one).
        offset: float or list[float]. The converter's offset, added after the scale.
    """

    family: str
    image_size: Optional[int]
    native_size: Optional[int]
    patch_size: Optional[int]
    class_token: bool
    scale: Union[float, list]
    offset: Union[float, list]


def not_found_line(preset, error):
    """One line: the preset cannot be read, where it was looked for, and how to bring it offline."""
    where = preset if os.path.isdir(preset) else f"the keras-hub cache {cache_folder()}"
    return (f"backbone='hub:{preset}': cannot read the preset from {where} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:160] if str(error) else 'no detail'}); online, it downloads once; "
            f"for a machine without a network, run `python -c \"import keras_hub; "
            f"keras_hub.models.Backbone.from_preset('{preset}')\"` where there is one and copy {cache_folder()} "
            f"to the same place here, or copy the preset's folder and set backbone='hub:<that folder>'")


def encoder_config(preset):
    """(class name, constructor arguments) of the preset's image encoder, from its config.json."""
    saved = preset_utils.load_json(preset, preset_utils.CONFIG_FILE)  # the preset's config.json, not the run's
    name = saved.get("class_name") or saved["registered_name"].split(">")[-1]
    arguments = saved["config"]
    if name in JOINT_MODELS:  # a CLIP or SigLIP model: its image half
        vision = arguments["vision_encoder"]
        name, arguments = vision["class_name"], vision["config"]
    return name, arguments


def image_converter(preset):
    """The preset's image converter (input size, scale, offset), from its image_converter.json.

    Read as the base class: a bare vision encoder saved as a preset has no converter subclass.
    """
    if not preset_utils.check_file_exists(preset, preset_utils.IMAGE_CONVERTER_CONFIG_FILE):
        raise ValueError(f"backbone='hub:{preset}': the preset has no {preset_utils.IMAGE_CONVERTER_CONFIG_FILE}, "
                         "so its input size and normalisation are unknown; save one with "
                         "keras_hub.layers.ImageConverter(...).save_to_preset(<folder>)")
    config = preset_utils.load_json(preset, preset_utils.IMAGE_CONVERTER_CONFIG_FILE)["config"]
    keep = ("image_size", "scale", "offset", "height", "width", "mean", "variance")
    return keras_hub.layers.ImageConverter(**{key: value for key, value in config.items() if key in keep})


def preset_info(preset):
    """Reads a preset's encoder class, input size and normalisation; ValueError (one line) when it cannot be read.

    The two small JSON files are read once per call; the builder and the input-size check each call it once.
    """
    try:
        name, arguments = encoder_config(preset)
        converter = image_converter(preset)
    except Exception as error:  # missing offline, gated, or not a preset: one line that says what to do
        raise ValueError(not_found_line(preset, error)) from None
    if name not in FAMILIES:
        raise ValueError(f"backbone='hub:{preset}' is a keras-hub {name}; the image encoders supported are "
                         f"{sorted(FAMILIES)}")
    shape = arguments.get("image_shape") or arguments.get("input_shape") or (None,)
    fixed = shape[0] if FAMILIES[name][1] else None
    native = converter.image_size[0] if getattr(converter, "image_size", None) else fixed
    patch = arguments.get("patch_size")
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    token = FAMILIES[name][0] is not _feature_map and arguments.get("use_class_token", True)
    return PresetInfo(name, fixed, native, patch, bool(token), _listed(converter.scale, 1.0),
                      _listed(converter.offset, 0.0))


def build_hub_backbone(preset, inputs, width=1.0, pretrained=False, class_token=False):
    """Builds the preset's encoder on `inputs` ([0, 255] pixels) and returns its feature map.

    With `class_token`, returns (feature map, token). The encoder is built at the input size of
    `inputs` (square; a multiple of the patch size for ViTs).

    Args:
        preset: str. A keras-hub preset name or a preset folder.
        inputs: KerasTensor. Images [batch, side, side, 3] in [0, 255].
        width: float. Not used: a preset fixes its width (a note says so when it is not 1.0).
        pretrained: bool. Load the preset's weights; False: its architecture, random weights.
        class_token: bool. Also return the pooled token (a ViT's; see `HubEncoder`).
    """
    if width != 1.0:
        print(f"note: backbone_width={width} does not apply to backbone='hub:{preset}' (a preset fixes its "
              "width); building the preset's network")
    info = preset_info(preset)
    side = inputs.shape[1]
    # DINOv2 is the one ViT built at any size (it interpolates its position embeddings); the
    # others are built as saved, at the size their config and weights fix.
    options = {"image_shape": (side, side, 3)} if info.family == "DINOV2Backbone" else {}
    # A preset's config names the dtype it was saved in; the run's precision policy applies instead.
    options["dtype"] = keras.config.dtype_policy().name
    try:
        model = keras_hub.models.Backbone.from_preset(preset, load_weights=pretrained, **options)
    except (OSError, ConnectionError) as error:  # the weights file, fetched on first use
        raise ValueError(not_found_line(preset, error)) from None
    except Exception as error:  # read, but not buildable or not matching its weights
        raise ValueError(f"backbone='hub:{preset}': keras-hub cannot build the preset: {type(error).__name__}: "
                         f"{str(error).splitlines()[0][:300]}") from None
    encoder = getattr(model, "vision_encoder", model)
    x = ScaleOffset(info.scale, info.offset, name="hub_normalization")(inputs)
    return HubEncoder(encoder, class_token=class_token, name="hub")(x)
