"""The input size of a run on a keras-hub preset: what the preset fixes, read before any work.

A ViT's position embeddings fix its input size (CLIP, SigLIP, ViT), so the preset's size replaces
`image_size`, with a note; DINOv2 takes any multiple of its patch size. Reading the preset here
also stops a training run at once, with one line, when the preset is neither cached nor
downloadable; a trained run's other modes then take the image size its config.json saved.
"""

import dataclasses

from backbone import is_hub_backbone
from backbone.hub import PRESET_PREFIX, preset_info
from utils.config import ConfigError
from utils.run_folder import saved_settings


def with_preset_input(config):
    """`config` with the image_size its keras-hub preset needs; unchanged for other backbones."""
    if not is_hub_backbone(config.backbone):
        return config
    try:
        info = preset_info(config.backbone[len(PRESET_PREFIX):])
    except ValueError as error:
        # A trained model holds its whole encoder: testing, predicting or exporting it needs no
        # preset files, only the input size its run trained at.
        saved = saved_settings(config.run_name) if config.mode != "train" else None
        if saved and saved.get("backbone") == config.backbone:
            return dataclasses.replace(config, image_size=saved["image_size"])
        raise ConfigError(str(error)) from None
    if config.pooling == "class_token" and not info.class_token:
        raise ConfigError(f"pooling='class_token' with backbone={config.backbone!r}: this {info.family} gives no "
                          "class token; choose avg, max, avg+max or flatten")
    size = config.image_size
    if info.image_size and size != info.image_size:
        print(f"note: image_size={size} -> {info.image_size}: backbone={config.backbone!r} is built for "
              f"{info.image_size} px (its position embeddings fix the input size)")
        size = info.image_size
    elif info.patch_size and size % info.patch_size:
        size = max(info.patch_size, size // info.patch_size * info.patch_size)
        print(f"note: image_size={config.image_size} -> {size}: backbone={config.backbone!r} takes a multiple of "
              f"its patch size {info.patch_size}")
    elif info.native_size and size != info.native_size:
        print(f"note: backbone={config.backbone!r} was pretrained at {info.native_size} px; training at "
              f"image_size={size}")
    return dataclasses.replace(config, image_size=size)
