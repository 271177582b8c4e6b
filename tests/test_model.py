"""The model: any input size, .keras round trip in safe mode, normalisation, backbone registry."""

import dataclasses

import keras
import numpy as np
import pytest

from backbone import BACKBONES, get_backbone
from configs import Config
from multi_label.heads import HeadSettings
from multi_label.model import ModelSettings, build_model
from multi_label.preprocessing import IMAGENET_MEAN, IMAGENET_STD, InputNormalization
from multi_label.tasks.settings import head_settings, model_settings


def tiny(**changes):
    return ModelSettings(**{"backbone_width": 0.125, **changes})


def test_settings_defaults_are_the_config_defaults():
    assert ModelSettings() == model_settings(Config())
    assert HeadSettings() == head_settings(Config())
    assert {f.name for f in dataclasses.fields(ModelSettings)} >= {f.name for f in dataclasses.fields(HeadSettings)}


def test_whole_config_still_builds():
    # duck typing: a caller that passes the whole Config in the settings slot keeps working
    model = build_model(dataclasses.replace(Config(), backbone_width=0.125), num_classes=3)
    assert model.output_shape == (None, 3)


def test_only_heads_that_pool_fix_the_input_size_when_flattening():
    assert build_model(tiny(head="linear", pooling="flatten"), 3).input_shape == (None, 64, 64, 3)
    # csra attends over the whole map and ignores `pooling`: any input size still works
    assert build_model(tiny(head="csra", pooling="flatten"), 3).input_shape == (None, None, None, 3)


@pytest.mark.parametrize("size", [64, 96])
def test_resnet18_any_input_size(size):
    model = build_model(tiny(), num_classes=7)
    logits = model(np.random.rand(2, size, size, 3).astype("float32") * 255)
    assert logits.shape == (2, 7) and logits.dtype == "float32"


def test_no_conv_bias_and_bn_after_every_conv():
    model = build_model(ModelSettings(), num_classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(convs) == 20 and len(bns) == 20  # 17 main convs + 3 downsample shortcuts, each with a BN
    assert all(not c.use_bias for c in convs)


def test_published_parameter_counts():
    # torchvision's figures minus the 1000-class classifier (BN running statistics add a little)
    for name, published in [("resnet18", 11.18e6), ("resnet50", 23.51e6), ("resnext50_32x4d", 22.98e6)]:
        inputs = keras.Input((224, 224, 3))
        params = keras.Model(inputs, get_backbone(name)[0](inputs)).count_params()
        assert abs(params - published) / published < 0.005, (name, params)


def test_keras_round_trip_identical_outputs(tmp_path):
    model = build_model(tiny(pooling="avg+max", dropout=0.2), num_classes=5)
    x = np.random.rand(3, 72, 72, 3).astype("float32") * 255
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_unknown_backbone_and_head():
    allowed = r"backbone must be one of \[.*'resnet18'.*\] or hub:<keras-hub preset>. Received: backbone='resnet19'"
    with pytest.raises(ValueError, match=allowed):
        build_model(tiny(backbone="resnet19"), 3)
    assert set(BACKBONES) >= {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d"}


def test_input_normalization_matches_numpy():
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    imagenet = (x / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(InputNormalization("imagenet")(x), imagenet, rtol=1e-5, atol=1e-5)
    standard = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(InputNormalization("standardize")(x), standard, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(InputNormalization("unit")(x), x / 255, rtol=1e-6)
    flat = np.full((1, 4, 4, 3), 7.0, np.float32)
    assert np.isfinite(InputNormalization("standardize")(flat)).all()


def test_backbone_weights_from_local_file(tmp_path):
    source = build_model(tiny(), num_classes=4)
    path = str(tmp_path / "pretrained.keras")
    source.save(path)
    target = build_model(tiny(backbone_weights=path), num_classes=9)  # another head: only the backbone transfers
    for layer in source.layers:
        if layer.name != "logits" and layer.weights:
            for a, b in zip(layer.get_weights(), target.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="backbone_weights='missing.keras': file not found"):
        build_model(tiny(backbone_weights="missing.keras"), 4)
