"""Backbones: every registry entry builds at two sizes and round-trips; published sizes; weights
files, ImageNet offline; fine-tuning controls (frozen backbone, backbone learning rate)."""

import dataclasses
import urllib.error

import h5py
import keras
import numpy as np
import pytest

from backbone import BACKBONES, get_backbone
from backbone.applications import APPLICATIONS, KerasApplicationsPreprocessing, imagenet_weights_file
from configs import Config
from multi_label.model import ModelSettings, backbone_layers, build_model
from multi_label.optim.finetune import FreezeBackbone, fine_tuning_callbacks, scale_backbone_learning_rate
from utils.config import ConfigError, load_config

# the smallest setting of each family: hand-written ResNets at 1/8 width, MobileNets at their
# smallest alpha; the other keras.applications models and EfficientNet-Lite0 have a fixed width
TINY_WIDTH = {"mobilenetv2": 0.35, "mobilenetv3_small": 0.75, "mobilenetv3_large": 0.75, "efficientnet_lite0": 1.0}
# The deep variants (8-15 s each on two CPU cores, mostly `.keras` loading) are marked slow: CI
# runs them, `python -m pytest -m "not slow"` leaves them out; each shares its code with a
# shallower sibling.
SLOW = {"resnet101", "resnet152", "resnext101_32x8d", "preact_resnet101", "keras_resnet101", "keras_resnet101v2",
        "efficientnetv2_s"}


def tiny_width(name):
    return TINY_WIDTH.get(name, 1.0 if name in APPLICATIONS else 0.125)


def config(**changes):
    return dataclasses.replace(Config(), **changes)


def images(size, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def round_trip(model, tmp_path, x):
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    # eager inference calls: tracing `predict` of a deep model costs more than the model itself here
    np.testing.assert_array_equal(model(x, training=False), loaded(x, training=False))
    return loaded


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BACKBONES])
def test_every_backbone_builds_at_two_sizes_and_round_trips(name, tmp_path):
    model = build_model(ModelSettings(backbone=name, backbone_width=tiny_width(name)), num_classes=3)
    for size in (64, 96):
        logits = model(images(size))
        assert logits.shape == (2, 3) and logits.dtype == "float32"
    round_trip(model, tmp_path, images(64))
    assert backbone_layers(model, name)


def test_published_parameter_counts():
    # published totals with the 1000-class classifier, minus that classifier
    expected = {
        "keras_resnet50": 25.6e6 - 2049000,  # Keras applications table (He et al. 2016)
        "keras_resnet50v2": 25.6e6 - 2049000,
        "preact_resnet50": 25.557e6 - 2049000,  # the pre-activation ResNet-50 has ResNet-50's convolutions
        "convnext_tiny": 28.6e6 - 769000,  # Liu et al. 2022
        "efficientnetv2_b0": 7.2e6 - 1281000,  # Keras applications table
        "efficientnet_lite0": 4.7e6 - 1281000,  # TensorFlow TPU repository's EfficientNet-Lite table
    }
    for name, published in expected.items():
        inputs = keras.Input((224, 224, 3))
        params = keras.Model(inputs, get_backbone(name)[0](inputs)).count_params()
        assert abs(params - published) / published < 0.005, (name, params)


def test_backbone_layers_hold_every_weight_but_the_head():
    for name in ("resnet18", "mobilenetv3_small"):
        model = build_model(ModelSettings(backbone=name, backbone_width=tiny_width(name)), num_classes=3)
        inside = {id(w) for layer in backbone_layers(model) for w in layer.weights}
        outside = [w.path for w in model.weights if id(w) not in inside]
        assert outside == ["logits/kernel", "logits/bias"], outside


def test_preact_resnet_structure():
    model = build_model(ModelSettings(backbone="preact_resnet18", backbone_width=0.25), num_classes=3)
    names = {layer.name for layer in model.layers}
    assert "preact_resnet18_stem_bn" not in names and "preact_resnet18_post_bn" in names
    assert "preact_resnet18_s1_b1_preact_bn" in names and "preact_resnet18_s1_b1_bn2" not in names
    assert "preact_resnet18_s2_b1_down_bn" not in names and "preact_resnet18_s2_b1_down_conv" in names
    # identity shortcuts carry the raw sum: block 2 adds its branch to block 1's Add output
    add = model.get_layer("preact_resnet18_s1_b2_add")
    assert "preact_resnet18_s1_b1_add" in [t._keras_history.operation.name for t in add._inbound_nodes[0].input_tensors]
    assert not np.any(model.get_layer("preact_resnet18_s1_b1_conv2").get_weights()[0])  # branch starts as identity


def test_applications_preprocessing_matches_keras():
    x = images(5, n=2, seed=1)
    np.testing.assert_allclose(KerasApplicationsPreprocessing("caffe")(x),
                               keras.applications.resnet.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(KerasApplicationsPreprocessing("tf")(x),
                               keras.applications.resnet_v2.preprocess_input(x.copy()), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(KerasApplicationsPreprocessing("tf")(x),
                               keras.applications.mobilenet_v2.preprocess_input(x.copy()), rtol=1e-5, atol=1e-5)


class Requested(Exception):
    pass


@pytest.mark.parametrize("name, constructor, options", [
    ("keras_resnet50", "ResNet50", {}),
    ("keras_resnet50v2", "ResNet50V2", {}),
    ("efficientnetv2_b0", "EfficientNetV2B0", {}),
    ("convnext_tiny", "ConvNeXtTiny", {}),
    ("mobilenetv2", "MobileNetV2", {"alpha": 0.35}),
    ("mobilenetv3_small", "MobileNetV3Small", {"alpha": 0.75}),
    ("mobilenetv3_large", "MobileNetV3Large", {}),
])
def test_imagenet_file_is_the_one_keras_downloads(name, constructor, options, monkeypatch):
    from keras.src.utils import file_utils
    requested = {}

    def get_file(fname=None, origin=None, file_hash=None, **kwargs):
        requested.update(fname=fname, origin=origin, file_hash=file_hash)
        raise Requested

    monkeypatch.setattr(file_utils, "get_file", get_file)
    with pytest.raises(Requested):
        getattr(keras.applications, constructor)(include_top=False, weights="imagenet", input_shape=(224, 224, 3),
                                                  **options)
    file_name, url, md5 = imagenet_weights_file(name, options.get("alpha", 1.0))
    assert (file_name, url, md5) == (requested["fname"], requested["origin"], requested["file_hash"])


def test_imagenet_offline_is_one_clear_error(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setattr(file_utils.config, "keras_home", lambda: str(tmp_path))  # an empty cache
    with pytest.raises(ConfigError) as error:
        build_model(ModelSettings(backbone="mobilenetv3_small", backbone_weights="imagenet", backbone_width=1.0),
                    num_classes=3)
    message = str(error.value)
    assert "\n" not in message
    file_name = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    assert message.startswith(f"backbone_weights='imagenet': cannot download {file_name} "
                              "(https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/")
    assert f"pass its local path as backbone_weights=<path>/{file_name}" in message
    with pytest.raises(ConfigError, match="there are no ImageNet weights for backbone='resnet18'"):
        build_model(ModelSettings(backbone_weights="imagenet", backbone_width=0.125), num_classes=3)


def test_backbone_weights_from_a_keras_notop_file(tmp_path):
    from keras.src.legacy.saving import legacy_h5_format

    source = build_model(ModelSettings(backbone="mobilenetv3_small"), num_classes=3)
    path = str(tmp_path / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5")
    with h5py.File(path, "w") as f:  # the layout of Keras's own *_notop.h5 files
        legacy_h5_format.save_weights_to_hdf5_group(f, source.get_layer("mobilenetv3_small"))
    target = build_model(ModelSettings(backbone="mobilenetv3_small", backbone_weights=path), num_classes=5)
    for a, b in zip(source.get_layer("mobilenetv3_small").get_weights(),
                    target.get_layer("mobilenetv3_small").get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="loads into the keras.applications backbones"):
        build_model(ModelSettings(backbone_width=0.125, backbone_weights=path), num_classes=3)


def test_backbone_weights_from_a_keras_model_of_another_head(tmp_path):
    source = build_model(ModelSettings(backbone_width=0.125, head="csra"), num_classes=4)
    path = str(tmp_path / "source.keras")
    source.save(path)
    target = build_model(ModelSettings(backbone_width=0.125, backbone_weights=path), num_classes=6)
    for layer in backbone_layers(target):
        for a, b in zip(layer.get_weights(), source.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_config_checks_backbone_before_any_work():
    with pytest.raises(ConfigError, match=r"backbone='resnet19' is out of range; expected one of \[.*'resnet18'.*\]"):
        load_config(["backbone=resnet19"])
    with pytest.raises(ConfigError, match="backbone_weights='nowhere.h5' is out of range"):
        load_config(["backbone_weights=nowhere.h5"])
    assert load_config(["backbone=convnext_tiny", "backbone_weights=imagenet"]).backbone == "convnext_tiny"


def test_width_of_a_fixed_width_application_is_left_aside_with_a_note(capsys):
    model = build_model(ModelSettings(backbone="efficientnetv2_b0", backbone_width=0.5), num_classes=3)
    assert "note: backbone_width=0.5 does not apply to backbone='efficientnetv2_b0'" in capsys.readouterr().out
    assert model.get_layer("efficientnetv2_b0").count_params() == 5919312  # the published network


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return build_model(ModelSettings(backbone_width=0.125), num_classes=3)


def test_frozen_backbone_for_the_first_epochs_then_trained():
    model = small_model()
    optimizer = keras.optimizers.Adam(1e-2)
    callbacks = fine_tuning_callbacks(model, optimizer, backbone=Config().backbone, freeze_epochs=1)
    assert [type(c) for c in callbacks] == [FreezeBackbone]
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    layers = backbone_layers(model)
    state = lambda: [w.copy() for layer in layers for w in layer.get_weights()]  # BN moving statistics included
    before, head_before = state(), model.get_layer("logits").get_weights()[0].copy()
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((any(not np.array_equal(a, b) for a, b in zip(before, state())),
                         not np.array_equal(head_before, model.get_layer("logits").get_weights()[0])))

    x, y = images(32, n=16), np.random.default_rng(0).integers(0, 2, (16, 3)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[*callbacks, Record()], verbose=0)
    assert seen == [(False, True), (True, True)]  # epoch 1: head only, BN statistics untouched; epoch 2: all
    assert all(layer.trainable for layer in layers)


@pytest.mark.parametrize("optimizer", [keras.optimizers.Adam, keras.optimizers.SGD])
def test_backbone_learning_rate_multiplier_scales_its_updates_only(optimizer):
    x, y = images(32, n=8), np.random.default_rng(0).integers(0, 2, (8, 3)).astype("float32")

    def first_update(multiplier):
        model = small_model()
        before = {w.path: w.numpy().copy() for w in model.trainable_weights}
        opt = optimizer(1e-3)
        if multiplier != 1:
            variables = [v for layer in backbone_layers(model) for v in layer.trainable_variables]
            scale_backbone_learning_rate(opt, variables, multiplier)
        model.compile(optimizer=opt, loss="binary_crossentropy")
        model.train_on_batch(x, y)
        return {w.path: w.numpy() - before[w.path] for w in model.trainable_weights}

    plain, scaled = first_update(1.0), first_update(0.1)
    stem, head = "resnet18_stem_conv/kernel", "logits/kernel"
    # two separately traced runs agree to float32 rounding of the summed gradients, not bit for bit
    np.testing.assert_allclose(scaled[stem], 0.1 * plain[stem], rtol=2e-3, atol=1e-8)
    np.testing.assert_allclose(scaled[head], plain[head], rtol=2e-3, atol=1e-8)
