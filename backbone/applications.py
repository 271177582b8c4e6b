"""`keras.applications` models as feature extractors: the last feature map, no classifier.

Each wrapper is one nested Keras model named after its registry name (so its layers are found as
one block, and a Keras `*_notop.h5` ImageNet file loads into it unchanged), preceded by the input
normalisation that model was trained with. Whether that normalisation is part of the Keras model
was checked in the installed Keras source (keras/src/applications):

| registry name       | Keras model      | normalisation Keras expects          | inside the model? |
|---------------------|------------------|--------------------------------------|-------------------|
| keras_resnet50/101  | ResNet50/101     | "caffe": RGB->BGR, minus ImageNet mean | no: added here  |
| keras_resnet50v2/101v2 | ResNet50V2/101V2 | "tf": x / 127.5 - 1                | no: added here    |
| mobilenetv2         | MobileNetV2      | "tf": x / 127.5 - 1                  | no: added here    |
| efficientnetv2_b0   | EfficientNetV2B0 | x / 255, ImageNet mean/std           | yes (Rescaling + Normalization) |
| efficientnetv2_s    | EfficientNetV2S  | x / 128 - 1                          | yes (Rescaling)   |
| convnext_tiny       | ConvNeXtTiny     | x / 255, ImageNet mean/std           | yes (PreStem)     |
| mobilenetv3_small/large | MobileNetV3  | x / 127.5 - 1                        | yes (Rescaling)   |

so every wrapper takes [0, 255] pixels and the registry's normalisation for all of them is "raw".
"""

import keras
from keras import ops

# Keras's "caffe" preprocessing: BGR channel order and these per-channel means, no scaling.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@keras.saving.register_keras_serializable(package="multi_label")
class KerasApplicationsPreprocessing(keras.layers.Layer):
    """The input transform of a `keras.applications` model that does not include its own.

    Args:
        mode: str. "caffe" (RGB to BGR, minus the ImageNet mean in [0, 255]) or "tf"
            (x / 127.5 - 1), as `keras.applications.imagenet_utils.preprocess_input`.
    """

    def __init__(self, mode="caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf"):
            raise ValueError(f"mode must be one of ['caffe', 'tf']. Received: mode={mode!r}")
        self.mode = mode

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        mean = ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)
        return ops.flip(x, axis=-1) - mean

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _constructors():
    # name -> (Keras constructor, preprocessing added here or None, takes the width as alpha)
    apps = keras.applications
    return {
        "keras_resnet50": (apps.ResNet50, "caffe", False),
        "keras_resnet101": (apps.ResNet101, "caffe", False),
        "keras_resnet50v2": (apps.ResNet50V2, "tf", False),
        "keras_resnet101v2": (apps.ResNet101V2, "tf", False),
        "efficientnetv2_b0": (apps.EfficientNetV2B0, None, False),
        "efficientnetv2_s": (apps.EfficientNetV2S, None, False),
        "convnext_tiny": (apps.ConvNeXtTiny, None, False),
        "mobilenetv2": (apps.MobileNetV2, "tf", True),
        "mobilenetv3_small": (apps.MobileNetV3Small, None, True),
        "mobilenetv3_large": (apps.MobileNetV3Large, None, True),
    }


APPLICATIONS = tuple(_constructors())


def build_application(name, inputs, width=1.0):
    """Builds the wrapper `name` on `inputs` ([0, 255] pixels) and returns its last feature map.

    Args:
        name: str. One of `APPLICATIONS`.
        inputs: KerasTensor. Images [batch, height, width, 3] in [0, 255].
        width: float. The MobileNets' width multiplier `alpha`; the other models have a fixed
            width, and for them the setting is left aside with a note.
    """
    constructor, preprocessing, has_alpha = _constructors()[name]
    options = {"alpha": width} if has_alpha else {}
    if not has_alpha:
        note_fixed_width(name, width)
    application = constructor(include_top=False, weights=None, input_shape=(None, None, 3), **options)
    # Renamed by re-wrapping (some constructors derive settings from their `name` argument): the
    # same layers in the same order, so Keras's weight files still load into it.
    model = keras.Model(application.inputs, application.output, name=name)
    x = inputs
    if preprocessing is not None:
        x = KerasApplicationsPreprocessing(preprocessing, name=f"{name}_preprocessing")(x)
    return model(x)


def note_fixed_width(name, width):
    """Prints a note when a `backbone_width` other than 1.0 is given to the fixed-width network `name`."""
    if width != 1.0:
        print(f"note: backbone_width={width} does not apply to backbone={name!r}, which has a fixed width; "
              "building the published network")


# name -> (folder under KERAS_WEIGHTS, file name with {alpha} for the MobileNets, md5 by alpha or None)
IMAGENET_FILES = {
    "keras_resnet50": ("resnet", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       {1.0: "4d473c1dd8becc155b73f8504c6f6626"}),
    "keras_resnet101": ("resnet", "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
                        {1.0: "88cf7a10940856eca736dc7b7e228a21"}),
    "keras_resnet50v2": ("resnet", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                         {1.0: "fac2f116257151a9d068a22e544a4917"}),
    "keras_resnet101v2": ("resnet", "resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          {1.0: "c0ed64b8031c3730f411d2eb4eea35b5"}),
    "efficientnetv2_b0": ("efficientnet_v2", "efficientnetv2-b0_notop.h5", {1.0: "893217f2bb855e2983157299931e43ff"}),
    "efficientnetv2_s": ("efficientnet_v2", "efficientnetv2-s_notop.h5", {1.0: "af0682fb74e8c54910f2d4393339c070"}),
    "convnext_tiny": ("convnext", "convnext_tiny_notop.h5",
                      {1.0: "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"}),
    # Keras gives no hash for the MobileNetV2 files
    "mobilenetv2": ("mobilenet_v2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5",
                    dict.fromkeys((0.35, 0.5, 0.75, 1.0, 1.3, 1.4))),
    "mobilenetv3_small": ("mobilenet_v3", "weights_mobilenet_v3_small_224_{alpha}_float_no_top_v2.h5",
                          {0.75: "ebdb5cc8e0b497cd13a7c275d475c819", 1.0: "d3e8ec802a04aa4fc771ee12a9a9b836"}),
    "mobilenetv3_large": ("mobilenet_v3", "weights_mobilenet_v3_large_224_{alpha}_float_no_top_v2.h5",
                          {0.75: "40af19a13ebea4e2ee0c676887f69a2e", 1.0: "07fb09a5933dd0c8eaafa16978110389"}),
}


def imagenet_weights_file(name, width=1.0):
    """Returns (file name, URL, md5 hash or None) of the ImageNet `*_notop.h5` file Keras uses.

    The names are those of the installed Keras's own `weights="imagenet"` download
    (keras/src/applications/*.py); `tests/test_backbones.py` checks them against it.
    """
    if name not in IMAGENET_FILES:
        raise ValueError(f"backbone must be one of {sorted(IMAGENET_FILES)} for ImageNet weights. "
                         f"Received: backbone={name!r}")
    folder, pattern, hashes = IMAGENET_FILES[name]
    if float(width) not in hashes:
        raise ValueError(f"backbone_weights='imagenet': Keras publishes {name} weights for backbone_width in "
                         f"{sorted(hashes)} only. Received: backbone_width={width}")
    file_name = pattern.format(alpha=float(width))
    return file_name, f"{KERAS_WEIGHTS}{folder}/{file_name}", hashes[float(width)]


def load_imagenet_weights(backbone, name, width=1.0):
    """Downloads (or finds in the Keras cache) the ImageNet file of `name` and loads it into `backbone`.

    Offline, a ValueError names the file and says how to use a copy of it.
    """
    file_name, url, md5 = imagenet_weights_file(name, width)
    try:
        path = keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=md5)
    except Exception as error:  # offline or refused: one line that says what to fetch
        raise ValueError(
            f"backbone_weights='imagenet': cannot download {file_name} ({url}): {type(error).__name__}; "
            f"download that file on a machine with access and pass its local path as "
            f"backbone_weights=<path>/{file_name}") from None
    backbone.load_weights(path)
