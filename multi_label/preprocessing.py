"""Input normalisation inside the model, so an exported model takes plain [0, 255] pixels."""

import keras
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _imagenet(x):
    mean = ops.convert_to_tensor([255.0 * m for m in IMAGENET_MEAN], dtype=x.dtype)
    std = ops.convert_to_tensor([255.0 * s for s in IMAGENET_STD], dtype=x.dtype)
    return (x - mean) / std


def _standardize(x):
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    std = ops.std(x, axis=(1, 2, 3), keepdims=True)
    # the floor keeps a flat image finite, as tf.image.per_image_standardization does
    count = ops.cast(ops.prod(ops.shape(x)[1:]), x.dtype)
    return (x - mean) / ops.maximum(std, ops.rsqrt(count))


def _unit(x):
    return x / 255.0


def _centered(x):
    # EfficientNet-Lite's (TensorFlow TPU repository): mean 127 and std 128 for every channel
    return (x - 127.0) / 128.0


def _raw(x):
    return x


# Mode -> function of the images in the layer's compute dtype.
NORMALIZATIONS = {
    "imagenet": _imagenet,
    "standardize": _standardize,
    "unit": _unit,
    "centered": _centered,
    "raw": _raw,
}


@keras.saving.register_keras_serializable(package="multi_label")
class InputNormalization(keras.layers.Layer):
    """Maps pixel values in [0, 255] to what the backbone expects.

    Args:
        mode: str. "imagenet" ((x/255 - mean) / std, per channel), "standardize" (each image to
            zero mean and unit variance: the original project's "whitening"), "unit" (x / 255),
            "centered" ((x - 127) / 128, EfficientNet-Lite's) or "raw" (unchanged; for backbones
            that normalise internally).
    """

    def __init__(self, mode="imagenet", **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}. Received: {mode!r}")
        self.mode = mode

    def call(self, images):
        return NORMALIZATIONS[self.mode](ops.cast(images, self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
